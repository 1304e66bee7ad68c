//! What the harnesses run of the peers: tower-sessions' handlers, the same in the load benchmark
//! (`examples/load.rs`) and the memory footprint (`examples/footprint.rs`).

/// The incumbent's handlers, the same for both versions (0.15 for memory, 0.14 for Redis) but
/// for the session type.
macro_rules! tower_sessions_handlers {
    ($visit:ident, $read:ident, $session:ty) => {
        async fn $visit(session: $session) -> Result<String, StatusCode> {
            let visits = session
                .get::<u64>("visits")
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                .unwrap_or(0)
                + 1;
            session
                .insert("visits", visits)
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            Ok(visits.to_string())
        }

        async fn $read(session: $session) -> Result<String, StatusCode> {
            let visits = session
                .get::<u64>("visits")
                .await
                .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
                .unwrap_or(0);
            Ok(visits.to_string())
        }
    };
}
