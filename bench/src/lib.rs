//! Session types and sample data shared by the micro-benchmarks and the load benchmark.
//!
//! Run the micro-benchmarks with `cargo bench -p session-bench` and the load benchmark with
//! `cargo run --release -p session-bench --example load` (see `bench/RESULTS.md`).

use serde::{Deserialize, Serialize};
use session_runtime::Session;

/// One line of the large session's cart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stock-keeping unit.
    pub sku: String,
    /// How many.
    pub quantity: u32,
    /// Unit price in cents.
    pub price_cents: u64,
}

macro_rules! sessions {
    ($small:ident, $large:ident, $codec:literal, $small_cookie:literal, $large_cookie:literal) => {
        /// A small session: three fields.
        #[derive(Session, Debug, Clone, PartialEq)]
        #[session(cookie_name = $small_cookie, codec = $codec)]
        pub struct $small {
            /// The signed-in user.
            pub user_id: Option<u64>,
            /// A counter.
            pub visits: u64,
            /// A short string.
            pub theme: String,
        }

        /// A session of about 1 KB once encoded.
        #[derive(Session, Debug, Clone, PartialEq)]
        #[session(cookie_name = $large_cookie, codec = $codec)]
        pub struct $large {
            /// The signed-in user.
            pub user_id: Option<u64>,
            /// A counter.
            pub visits: u64,
            /// A short string.
            pub theme: String,
            /// The user's display name.
            pub name: String,
            /// The user's e-mail address.
            pub email: String,
            /// Permissions.
            pub roles: Vec<String>,
            /// Recently viewed pages.
            pub history: Vec<String>,
            /// The shopping cart.
            pub cart: Vec<Item>,
            /// A CSRF token.
            pub csrf: String,
            /// A locale tag.
            pub locale: String,
        }

        impl $small {
            /// A filled-in sample.
            #[must_use]
            pub fn sample() -> Self {
                Self {
                    user_id: Some(4_211_337),
                    visits: 42,
                    theme: "dark".to_owned(),
                }
            }
        }

        impl $large {
            /// A filled-in sample of about 1 KB.
            #[must_use]
            pub fn sample() -> Self {
                Self {
                    user_id: Some(4_211_337),
                    visits: 42,
                    theme: "dark".to_owned(),
                    name: "Ada Lovelace-Byron".to_owned(),
                    email: "ada.lovelace@analytical-engine.example".to_owned(),
                    roles: ["reader", "writer", "billing", "support"]
                        .map(str::to_owned)
                        .to_vec(),
                    history: (0..8)
                        .map(|i| format!("/catalogue/category-{i}/product-{}", 1000 + i * 37))
                        .collect(),
                    cart: (0..8)
                        .map(|i| Item {
                            sku: format!("SKU-{:08}-XL", 7_000_000 + i * 13),
                            quantity: i + 1,
                            price_cents: 1999 + u64::from(i) * 250,
                        })
                        .collect(),
                    csrf: "0f3c9a7e5b1d4e2fa8c6b0d9e7f5a3c1b9d7e5f3a1c9b7d5".to_owned(),
                    locale: "en-GB".to_owned(),
                }
            }
        }
    };
}

sessions!(SmallJson, LargeJson, "json", "small_json", "large_json");
sessions!(
    SmallMsgpack,
    LargeMsgpack,
    "msgpack",
    "small_msgpack",
    "large_msgpack"
);

/// Encodes every stored field of a session, as a whole-record save does.
///
/// # Errors
///
/// The codec's error.
pub fn encode_fields<T: Session>(
    data: &T,
) -> Result<Vec<(&'static str, Vec<u8>)>, session_runtime::codec::CodecError> {
    (0..T::FIELD_NAMES.len())
        .map(|index| Ok((T::FIELD_NAMES[index], data.encode_field(index)?)))
        .collect()
}

/// Defines [`Wide`] and [`WideData`] with the filler fields given.
macro_rules! wide {
    ($($field:ident),*) => {
        /// The scaling rows' session: a counter and 39 strings, about 4 KB with 100-byte
        /// strings. A write changes one field (`visits`), a read reads two (`visits`, `f01`).
        #[derive(Session, Debug, Clone, PartialEq)]
        #[session(cookie_name = "wide")]
        pub struct Wide {
            /// The counter a write increments.
            pub visits: u64,
            $(
                #[doc = "A filler string."]
                pub $field: String,
            )*
        }

        /// The same data as a plain serde struct, for the peers that keep one value
        /// (`PrivateCookieJar`).
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        pub struct WideData {
            /// The counter a write increments.
            pub visits: u64,
            $(
                #[doc = "A filler string."]
                pub $field: String,
            )*
        }

        /// The names of the filler fields, in order.
        pub const WIDE_FILLERS: &[&str] = &[$(stringify!($field)),*];

        impl Wide {
            /// Fills every filler field with `len` bytes.
            pub fn fill(&mut self, len: usize) {
                $(self.$field = filler(stringify!($field), len);)*
            }
        }

        impl WideData {
            /// Fills every filler field with `len` bytes.
            pub fn fill(&mut self, len: usize) {
                $(self.$field = filler(stringify!($field), len);)*
            }
        }
    };
}

wide!(
    f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
    f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31, f32, f33, f34, f35, f36, f37, f38,
    f39
);

/// The two fields of [`Wide`] that a read of the scaling rows uses, as a view
/// (`#[session(view_of = Wide)]`): a handler that extracts it loads only these from Redis.
#[derive(Session, Debug)]
#[session(view_of = Wide)]
pub struct WideHead {
    /// The counter a write increments.
    pub visits: u64,
    /// The filler string a read reads.
    pub f01: String,
}

/// The view of [`Wide`] that a write uses: the counter alone (`#[session(view_of = Wide)]`), so
/// a write loads one field of the 40 from Redis.
#[derive(Session, Debug)]
#[session(view_of = Wide)]
pub struct WideVisits {
    /// The counter a write increments.
    pub visits: u64,
}

/// `len` bytes of text that differ per field.
#[must_use]
pub fn filler(name: &str, len: usize) -> String {
    let mut text = String::with_capacity(len);
    while text.len() < len {
        text.push_str(name);
        text.push('-');
    }
    text.truncate(len);
    text
}

/// The resident memory (`VmRSS`) of process `pid`, in KiB; `None` if `/proc` does not say.
#[must_use]
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// What the rounds of a load run say about one row, ours against a peer: the exact two-sided
/// sign test at the 5% level on the rounds' pairs (each round runs both back to back; a round
/// where both cost the same counts for neither, and is left out of `n`).
///
/// With 9 rounds and no ties, ours must be cheaper in at least 8 for [`Verdict::Ahead`] (or in
/// at most 1 for [`Verdict::Behind`]); with 27, in at least 20 (at most 7). Anything in between
/// is [`Verdict::Level`]: the rounds cannot tell the two apart from the machine's noise,
/// whatever the median ratio says. `Level` means "not shown different", not "equal".
///
/// The test takes the rounds as independent. In the load benchmark they share one server
/// process per app for the whole run unless it runs with `--fresh-servers` (which restarts the
/// `serve-*` and example processes, not Redis nor the SQL apps in the harness), so a verdict is
/// then about those processes: a second run, with new processes, can disagree. The host's
/// drifting load is shared by neighbouring rounds either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ours cost less in significantly more rounds.
    Ahead,
    /// Not significant either way.
    Level,
    /// Ours cost more in significantly more rounds.
    Behind,
}

impl Verdict {
    /// The verdict on `cheaper` rounds where ours cost less and `dearer` where it cost more.
    #[must_use]
    pub fn of_rounds(cheaper: u32, dearer: u32) -> Self {
        if cheaper == dearer {
            return Self::Level;
        }
        // Counts of rounds: a run has dozens, so the sum cannot come near overflowing.
        let n = cheaper.saturating_add(dearer);
        // Doubled upper tail of Binomial(n, 1/2) from the larger side.
        let p = 2.0 * upper_tail(n, cheaper.max(dearer));
        if p >= 0.05 {
            Self::Level
        } else if cheaper > dearer {
            Self::Ahead
        } else {
            Self::Behind
        }
    }

    /// The word the load benchmark's tables print.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Ahead => "ahead",
            Self::Level => "level",
            Self::Behind => "**behind**",
        }
    }
}

/// P(X >= k) for X ~ Binomial(n, 1/2), `k <= n`, summed in logarithms so that no term
/// overflows or underflows to a wrong answer for any `n` (for a run's few dozen rounds the
/// relative error is about 1e-15).
fn upper_tail(n: u32, k: u32) -> f64 {
    let half = f64::from(n) * std::f64::consts::LN_2;
    // ln C(n, k), then C(n, i + 1) = C(n, i) * (n - i) / (i + 1).
    let mut ln_choose = ln_binomial(n, k);
    let mut tail = 0.0;
    for i in k..=n {
        tail += (ln_choose - half).exp();
        if i < n {
            ln_choose += f64::from(n - i).ln() - f64::from(i + 1).ln();
        }
    }
    tail.min(1.0)
}

/// ln(`n` choose `k`).
fn ln_binomial(n: u32, k: u32) -> f64 {
    let k = k.min(n - k);
    (0..k)
        .map(|i| f64::from(n - i).ln() - f64::from(i + 1).ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::{Verdict, upper_tail};

    #[test]
    fn sign_test_thresholds() {
        // 9 rounds: 8 of 9 is p = 0.039 two-sided, 7 of 9 is p = 0.18.
        assert_eq!(Verdict::of_rounds(9, 0), Verdict::Ahead);
        assert_eq!(Verdict::of_rounds(8, 1), Verdict::Ahead);
        assert_eq!(Verdict::of_rounds(7, 2), Verdict::Level);
        assert_eq!(Verdict::of_rounds(5, 4), Verdict::Level);
        assert_eq!(Verdict::of_rounds(2, 7), Verdict::Level);
        assert_eq!(Verdict::of_rounds(1, 8), Verdict::Behind);
        assert_eq!(Verdict::of_rounds(0, 9), Verdict::Behind);
        // 27 rounds: 20 of 27 is p = 0.019, 19 of 27 is p = 0.052.
        assert_eq!(Verdict::of_rounds(20, 7), Verdict::Ahead);
        assert_eq!(Verdict::of_rounds(19, 8), Verdict::Level);
        assert_eq!(Verdict::of_rounds(8, 19), Verdict::Level);
        assert_eq!(Verdict::of_rounds(7, 20), Verdict::Behind);
        // 9 rounds with 2 ties are 7 pairs: 7 of 7 is p = 0.016, 6 of 7 is p = 0.125.
        assert_eq!(Verdict::of_rounds(7, 0), Verdict::Ahead);
        assert_eq!(Verdict::of_rounds(6, 1), Verdict::Level);
        assert_eq!(Verdict::of_rounds(0, 0), Verdict::Level);
        // Large counts neither overflow nor turn a tie into a verdict.
        assert_eq!(Verdict::of_rounds(512, 512), Verdict::Level);
        assert_eq!(Verdict::of_rounds(520, 504), Verdict::Level);
        assert_eq!(Verdict::of_rounds(5_000, 4_000), Verdict::Ahead);
    }

    #[test]
    fn tails_match_exact_sums() {
        // Against integer sums: P(X >= 20), n = 27, is 1,285,624 / 2^27.
        let exact = 1_285_624.0 / 134_217_728.0;
        assert!((upper_tail(27, 20) - exact).abs() < 1e-15);
        // P(X >= 8), n = 9, is 10 / 512; the whole range sums to 1.
        assert!((upper_tail(9, 8) - 10.0 / 512.0).abs() < 1e-15);
        assert!((upper_tail(9, 0) - 1.0).abs() < 1e-12);
        assert!((upper_tail(2_000, 1_000) - 0.508_919_505_6).abs() < 1e-9);
    }
}
