//! Tests of Hookhost's changes to sled 0.34.7, one or more per change in
//! `HOOKHOST.md` (the second, allowed lints, has nothing to run). sled's own
//! tests of the modules those changes touch are beside this file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Config, Transactional, Tree};

/// Long enough for a slow machine; a wait this long means a hang.
const HANG: Duration = Duration::from_secs(120);

fn temp_db(name: &str) -> (sled::Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "sled-hookhost-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let db = Config::new().path(&dir).open().expect("open");
    (db, dir)
}

type TxResult = Result<(), TransactionError<()>>;

fn write(tree: &Tree, key: &[u8], value: &[u8]) -> TxResult {
    tree.transaction(|t| {
        t.insert(key, value)?;
        Ok::<_, ConflictableTransactionError<()>>(())
    })
}

// 1. A flush no longer blocks transactions while it writes. What must still
//    hold: a flush covers every transaction that finished before it was
//    called, and after a crash every transaction is there whole or not at
//    all. A child process commits transactions of two keys, flushes after
//    some of them, reports each flush, and aborts without closing the
//    database.

const CRASH_CHILD: &str = "SLED_HOOKHOST_CRASH_CHILD";
const TRANSACTIONS: u32 = 400;

#[test]
fn a_flush_covers_the_transactions_before_it_and_a_crash_leaves_none_half_written() {
    if let Ok(dir) = std::env::var(CRASH_CHILD) {
        crash_child(&dir);
    }
    let dir = std::env::temp_dir()
        .join(format!("sled-hookhost-{}-crash", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = std::process::Command::new(
        std::env::current_exe().expect("test binary"),
    )
    .args([
        "--exact",
        "a_flush_covers_the_transactions_before_it_and_a_crash_leaves_none_half_written",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CRASH_CHILD, &dir)
    .output()
    .expect("run the child");
    assert!(!child.status.success(), "the child aborts");
    let reported = String::from_utf8_lossy(&child.stdout);
    let flushed: u32 = reported
        .lines()
        .filter_map(|l| l.strip_prefix("flushed "))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .expect("the child flushed at least once");

    let db = Config::new().path(&dir).open().expect("reopen");
    let (a, b) = (
        db.open_tree("a").expect("tree a"),
        db.open_tree("b").expect("tree b"),
    );
    for i in 0..TRANSACTIONS {
        let key = i.to_be_bytes();
        let (in_a, in_b) = (
            a.get(key).expect("get a").is_some(),
            b.get(key).expect("get b").is_some(),
        );
        assert_eq!(in_a, in_b, "transaction {i} is half there");
        if i <= flushed {
            assert!(in_a, "transaction {i} finished before flush {flushed}");
        }
    }
    drop((a, b, db));
    let _ = std::fs::remove_dir_all(&dir);
}

fn crash_child(dir: &str) -> ! {
    let db = Config::new().path(dir).open().expect("open");
    let (a, b) = (
        db.open_tree("a").expect("tree a"),
        db.open_tree("b").expect("tree b"),
    );
    // A second thread flushes all the time, so flushes overlap
    // transactions.
    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.flush().expect("flush");
            }
        })
    };
    for i in 0..TRANSACTIONS {
        let key = i.to_be_bytes();
        (&a, &b)
            .transaction(|(a, b)| {
                a.insert(&key, vec![1; 100])?;
                b.insert(&key, vec![2; 100])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
        if i % 50 == 49 {
            db.flush().expect("flush");
            println!("flushed {i}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    flusher.join().expect("flusher");
    // Writes after the last flush may or may not survive; none is half
    // there.
    for i in TRANSACTIONS..TRANSACTIONS + 100 {
        let key = i.to_be_bytes();
        (&a, &b)
            .transaction(|(a, b)| {
                a.insert(&key, vec![1; 100])?;
                b.insert(&key, vec![2; 100])?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .expect("transaction");
    }
    std::process::abort();
}

// 3. A job wakes one I/O thread, not all of them. A lost wake-up would
//    leave a log write queued with every thread asleep: writers that flush
//    would wait forever. Many of them at once all finish.

#[test]
fn writers_that_flush_at_once_all_finish() {
    let (db, dir) = temp_db("wakeups");
    let (done_tx, done_rx) = mpsc::channel();
    const WRITERS: usize = 8;
    for w in 0..WRITERS {
        let (db, done_tx) = (db.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let tree = db.open_tree(format!("w{w}")).expect("tree");
            for i in 0u32..200 {
                tree.insert(i.to_be_bytes(), vec![w as u8; 64]).expect("insert");
                if i % 10 == 0 {
                    db.flush().expect("flush");
                }
            }
            let _ = done_tx.send(w);
        });
    }
    for _ in 0..WRITERS {
        done_rx.recv_timeout(HANG).expect("a writer hangs: a job was not picked up");
    }
    for w in 0..WRITERS {
        assert_eq!(db.open_tree(format!("w{w}")).expect("tree").len(), 200);
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

// 4. Blind writes in a transaction: `set` and `delete` buffer the write
//    without reading the old value; a read in the same transaction sees it,
//    commit applies it, an abort drops it.

#[test]
fn set_and_delete_write_blind_and_reads_in_the_transaction_see_them() {
    let (db, dir) = temp_db("blind");
    let tree = db.open_tree("t").expect("tree");
    tree.insert("kept", "old").expect("insert");
    tree.insert("gone", "old").expect("insert");

    tree.transaction(|t| {
        t.set("kept", "new")?;
        t.set("added", "new")?;
        t.delete("gone")?;
        assert_eq!(t.get("kept")?.as_deref(), Some(b"new".as_slice()));
        assert_eq!(t.get("added")?.as_deref(), Some(b"new".as_slice()));
        assert_eq!(t.get("gone")?, None);
        Ok::<_, ConflictableTransactionError<()>>(())
    })
    .expect("transaction");
    assert_eq!(tree.get("kept").expect("get").as_deref(), Some(b"new".as_slice()));
    assert_eq!(tree.get("added").expect("get").as_deref(), Some(b"new".as_slice()));
    assert_eq!(tree.get("gone").expect("get"), None);

    let aborted: TxResult = tree.transaction(|t| {
        t.set("kept", "aborted")?;
        t.delete("added")?;
        Err(ConflictableTransactionError::Abort(()))
    });
    assert!(matches!(aborted, Err(TransactionError::Abort(()))));
    assert_eq!(tree.get("kept").expect("get").as_deref(), Some(b"new".as_slice()));
    assert_eq!(tree.get("added").expect("get").as_deref(), Some(b"new".as_slice()));

    // `insert` and `remove` still answer the value they replace.
    tree.transaction(|t| {
        assert_eq!(t.insert("kept", "newer")?.as_deref(), Some(b"new".as_slice()));
        assert_eq!(t.remove("added")?.as_deref(), Some(b"new".as_slice()));
        Ok::<_, ConflictableTransactionError<()>>(())
    })
    .expect("transaction");
    assert_eq!(tree.get("kept").expect("get").as_deref(), Some(b"newer".as_slice()));
    assert_eq!(tree.get("added").expect("get"), None);
    drop((tree, db));
    let _ = std::fs::remove_dir_all(&dir);
}

// 5. A run of reads can take the lock once: while a reader holds
//    `read_together`, a transaction on another thread waits and reads under
//    it go on meanwhile (nested guards too: a nested read that took the lock
//    again behind the waiting transaction would never return), and a
//    transaction on the guarded thread panics instead of deadlocking.

#[test]
fn reads_together_hold_transactions_off_and_a_write_under_them_is_refused() {
    let (db, dir) = temp_db("together");
    let tree = db.open_tree("t").expect("tree");
    // A first transaction turns sled's lock on for good (until one runs,
    // reads only count themselves in).
    write(&tree, b"k", b"0").expect("transaction");

    let committed = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let writer = {
        let (tree, committed) = (tree.clone(), committed.clone());
        std::thread::spawn(move || {
            started_rx.recv().expect("reader holds its guard");
            write(&tree, b"k", b"1").expect("transaction");
            committed.store(true, Ordering::SeqCst);
        })
    };
    // The reader runs on a thread of its own, so that a deadlock fails the
    // test instead of hanging it.
    let (read_tx, read_rx) = mpsc::channel();
    {
        let (tree, committed) = (tree.clone(), committed.clone());
        std::thread::spawn(move || {
            let together = sled::read_together();
            let _ = started_tx.send(());
            for _ in 0..2000 {
                let _nested = sled::read_together();
                let value = tree.get(b"k").expect("get");
                assert_eq!(value.as_deref(), Some(b"0".as_slice()));
                assert_eq!(tree.range(b"a".as_slice()..).count(), 1);
            }
            let held_off = !committed.load(Ordering::SeqCst);
            drop(together);
            let _ = read_tx.send(held_off);
        });
    }
    let held_off = read_rx
        .recv_timeout(HANG)
        .expect("reads under a guard stopped: a nested read waited for the transaction");
    assert!(held_off, "a transaction committed while a reader held its guard");
    writer.join().expect("writer");
    assert_eq!(tree.get(b"k").expect("get").as_deref(), Some(b"1".as_slice()));

    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _together = sled::read_together();
        write(&tree, b"k", b"2")
    }));
    assert!(refused.is_err(), "a transaction under a guard must not run");
    // The guard unwound with the panic: transactions run again.
    write(&tree, b"k", b"3").expect("transaction after the guard");
    assert_eq!(tree.get(b"k").expect("get").as_deref(), Some(b"3".as_slice()));
    drop((tree, db));
    let _ = std::fs::remove_dir_all(&dir);
}
