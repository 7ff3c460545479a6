//! The dispatcher's slot accounting and batching rules.

use super::*;
use tokio::sync::Notify;

/// Whether `wake` was notified: a stored notification completes on its
/// first poll, which a zero timeout still makes.
async fn woken(wake: &Notify) -> bool {
    tokio::time::timeout(Duration::ZERO, wake.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn slots_go_back_when_the_handler_returns_and_are_taken_again_for_a_re_run() {
    let global = Arc::new(Semaphore::new(2));
    let plugin = Arc::new(Semaphore::new(1));
    let held = (
        global.clone().try_acquire_owned().expect("global"),
        plugin.clone().try_acquire_owned().expect("plugin"),
    );
    let mut slots = Slots {
        global: global.clone(),
        plugin: plugin.clone(),
        held: Some(held),
        waiting: None,
    };
    let wake = Notify::new();
    slots.release(&wake);
    assert_eq!(
        (global.available_permits(), plugin.available_permits()),
        (2, 1)
    );
    // The dispatcher was woken to use them.
    assert!(woken(&wake).await, "a release wakes the dispatcher");
    // A second release gives nothing back and wakes nobody.
    slots.release(&wake);
    assert!(!woken(&wake).await);
    assert_eq!(
        (global.available_permits(), plugin.available_permits()),
        (2, 1)
    );

    // A re-run waits for its plugin's permit like a new attempt, and
    // holds no worker while it waits.
    let other = plugin
        .clone()
        .try_acquire_owned()
        .expect("taken by another");
    // Polled exactly once: it has run up to its first wait.
    let mut rerun = Box::pin(slots.acquire(&wake));
    assert!(futures::poll!(&mut rerun).is_pending());
    assert_eq!(global.available_permits(), 2);
    drop(other);
    rerun.await;
    assert!(slots.held.is_some());
    assert_eq!(
        (global.available_permits(), plugin.available_permits()),
        (1, 0)
    );
}

#[tokio::test]
async fn a_delivery_claimed_ahead_gives_its_place_back_once_it_has_its_slots() {
    let global = Arc::new(Semaphore::new(1));
    let plugin = Arc::new(Semaphore::new(1));
    let ahead = Arc::new(Semaphore::new(1));
    let running = plugin.clone().try_acquire_owned().expect("plugin");
    let mut slots = Slots {
        global: global.clone(),
        plugin: plugin.clone(),
        held: None,
        waiting: Some(ahead.clone().try_acquire_owned().expect("ahead")),
    };
    let wake = Notify::new();
    let mut start = Box::pin(slots.acquire(&wake));
    assert!(futures::poll!(&mut start).is_pending());
    assert_eq!(
        ahead.available_permits(),
        0,
        "its place is held while it waits"
    );
    drop(running);
    start.await;
    assert!(slots.held.is_some());
    assert_eq!(
        (global.available_permits(), plugin.available_permits()),
        (0, 0)
    );
    assert_eq!(ahead.available_permits(), 1, "its place goes back");
    assert!(
        woken(&wake).await,
        "the dispatcher is woken to claim the next"
    );
}

#[test]
fn conflict_reruns_start_at_once_then_back_off_up_to_a_cap() {
    assert_eq!(conflict_pause(1, 0.99), None);
    assert_eq!(conflict_pause(2, 0.99), None);
    assert_eq!(conflict_pause(3, 0.5), Some(Duration::from_millis(4)));
    assert_eq!(conflict_pause(5, 0.5), Some(Duration::from_millis(16)));
    assert_eq!(conflict_pause(60, 0.5), Some(Duration::from_millis(32)));
    assert_eq!(conflict_pause(60, 0.0), Some(Duration::ZERO));
}
