//! Hostile: spins forever. Must end as `out_of_fuel` or `deadline`.
use hookhost_sdk::{Event, Handler, HandlerError, Manifest, RetryPolicy};

struct Spin;

impl Handler for Spin {
    fn describe() -> Manifest {
        Manifest::new()
            .subscribe("test.loop")
            .retry(RetryPolicy::never())
    }

    fn handle(event: Event) -> Result<(), HandlerError> {
        let mut x = event.body.len() as u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

hookhost_sdk::export!(Spin);
