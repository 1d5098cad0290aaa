//! The queue contract against both backends: Redis on `TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`, a key prefix per check, deleted afterwards is not needed: each
//! prefix is unique and the keys of finished checks are empty sets) and SQLite (a file per check).

use std::sync::Arc;

use flakeguard_queue::{JobQueue, RedisQueue, SqliteQueue};

fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

mod redis {
    use super::*;

    async fn queue() -> Arc<dyn JobQueue> {
        let url =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let queue = RedisQueue::connect(&url, &unique("fg-test"))
            .await
            .unwrap_or_else(|e| panic!("Redis must run for these tests ({url}): {e}"));
        Arc::new(queue)
    }

    flakeguard_queue::queue_contract_tests!(queue);
}

mod sqlite {
    use super::*;

    async fn queue() -> Arc<dyn JobQueue> {
        let dir = std::env::temp_dir().join(unique("fg-queue"));
        let queue = SqliteQueue::open(&dir.join("queue.db"))
            .await
            .expect("open the SQLite queue");
        Arc::new(queue)
    }

    flakeguard_queue::queue_contract_tests!(queue);
}
