//! Hostile: allocates until memory runs out. Must end as `memory`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy};

struct Bomb;

impl Handler for Bomb {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.memory")
            .retry(RetryPolicy::never())
    }

    fn handle(_event: Event) -> Result<(), HandlerError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

hookhost_sdk::export!(Bomb);
