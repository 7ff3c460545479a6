#[cfg(feature = "testing")]
use std::cell::RefCell;
use std::sync::atomic::AtomicBool;

use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

use super::*;

#[cfg(feature = "testing")]
thread_local! {
    pub static COUNT: RefCell<u32> = RefCell::new(0);
}

const RW_REQUIRED_BIT: usize = 1 << 31;

#[derive(Default)]
pub(crate) struct ConcurrencyControl {
    active: AtomicUsize,
    upgrade_complete: AtomicBool,
    rw: RwLock<()>,
}

static CONCURRENCY_CONTROL: Lazy<
    ConcurrencyControl,
    fn() -> ConcurrencyControl,
> = Lazy::new(init_cc);

fn init_cc() -> ConcurrencyControl {
    ConcurrencyControl::default()
}

// Hookhost: how many `ReadTogether` guards this thread holds. While it
// holds one, its reads are already protected and take nothing more.
thread_local! {
    static HELD: std::cell::Cell<usize> = std::cell::Cell::new(0);
}

#[derive(Debug)]
#[must_use]
pub(crate) enum Protector<'a> {
    Write(RwLockWriteGuard<'a, ()>),
    Read(RwLockReadGuard<'a, ()>),
    None(&'a AtomicUsize),
    /// A read on a thread that holds a `ReadTogether`.
    Held,
}

/// Shared access to the tree for a run of reads on this thread, taken once
/// (see `read_together`). Not `Send`: it guards the thread that took it.
#[must_use]
pub struct ReadTogether {
    _protector: Protector<'static>,
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for ReadTogether {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get() - 1));
    }
}

impl std::fmt::Debug for ReadTogether {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadTogether")
    }
}

/// Takes sled's concurrency-control lock shared once for every read this
/// thread makes until the guard drops, instead of once per `get` and per
/// step of an iterator. A transaction takes that lock alone, so under a
/// steady stream of transactions each of those reads may wait for one; a
/// run of reads under one guard waits at most once, and also sees no
/// transaction's writes half applied.
///
/// While the guard lives, this thread must not write: a transaction, or any
/// write that takes the lock alone, would wait for the guard forever. Such a
/// write panics instead.
pub fn read_together() -> ReadTogether {
    let protector = CONCURRENCY_CONTROL.read();
    HELD.with(|h| h.set(h.get() + 1));
    ReadTogether { _protector: protector, _thread: std::marker::PhantomData }
}

impl<'a> Drop for Protector<'a> {
    fn drop(&mut self) {
        if let Protector::Held = self {
            return;
        }
        if let Protector::None(active) = self {
            active.fetch_sub(1, Release);
        }
        #[cfg(feature = "testing")]
        COUNT.with(|c| {
            let mut c = c.borrow_mut();
            *c -= 1;
            assert_eq!(*c, 0);
        });
    }
}

pub(crate) fn read<'a>() -> Protector<'a> {
    CONCURRENCY_CONTROL.read()
}

pub(crate) fn write<'a>() -> Protector<'a> {
    CONCURRENCY_CONTROL.write()
}

impl ConcurrencyControl {
    fn enable(&self) {
        if self.active.fetch_or(RW_REQUIRED_BIT, SeqCst) < RW_REQUIRED_BIT {
            // we are the first to set this bit
            while self.active.load(Acquire) != RW_REQUIRED_BIT {
                std::sync::atomic::spin_loop_hint()
            }
            self.upgrade_complete.store(true, Release);
        }
    }

    fn read(&self) -> Protector<'_> {
        if HELD.with(|h| h.get()) > 0 {
            return Protector::Held;
        }
        #[cfg(feature = "testing")]
        COUNT.with(|c| {
            let mut c = c.borrow_mut();
            *c += 1;
            assert_eq!(*c, 1);
        });

        let active = self.active.fetch_add(1, Release);

        if active >= RW_REQUIRED_BIT {
            self.active.fetch_sub(1, Release);
            Protector::Read(self.rw.read())
        } else {
            Protector::None(&self.active)
        }
    }

    fn write(&self) -> Protector<'_> {
        assert_eq!(
            HELD.with(|h| h.get()),
            0,
            "sled: a write that takes the lock alone, on a thread that holds a ReadTogether"
        );
        #[cfg(feature = "testing")]
        COUNT.with(|c| {
            let mut c = c.borrow_mut();
            *c += 1;
            assert_eq!(*c, 1);
        });
        self.enable();
        while !self.upgrade_complete.load(Acquire) {
            std::sync::atomic::spin_loop_hint()
        }
        Protector::Write(self.rw.write())
    }
}
