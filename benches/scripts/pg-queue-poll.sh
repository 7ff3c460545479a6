#!/usr/bin/env bash
# The PostgreSQL queue table's state every second, while a benchmark runs:
# row versions live and dead, updates and how many were HOT, autovacuum runs,
# deliveries pending, and the pages the dispatcher's due scan (48 entries)
# reads. It watches the newest `hookhost_test_*` database, the one `cluster`
# and `hotkey` create.
#
#   benches/scripts/pg-queue-poll.sh [URL] > poll.log &
#   cargo run --release -p hookhost-bench --bin cluster -- --seconds 10 --hosts 1
#   kill %1
#
# URL: the server, without a database (default: the tests' local server).
# Each line: database, time|live|dead|updated|HOT updated|autovacuums|pending,
# then the due scan's buffers.
set -u
U="${1:-postgres://hookhost:hookhost@127.0.0.1:5432}"
while true; do
  db=$(psql "$U/postgres" -Atc "select datname from pg_database where datname like 'hookhost_test_%' order by oid desc limit 1")
  if [ -n "$db" ]; then
    line=$(psql "$U/$db" -Atc "select now()::time(0), n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count, (select count(*) from deliveries where status='pending') from pg_stat_user_tables where relname='deliveries'" 2>/dev/null)
    plan=$(psql "$U/$db" -Atc "explain (analyze, buffers) select event, seq, due_ms from deliveries where status='pending' and due_ms <= (extract(epoch from now())*1000)::bigint order by due_ms, event, seq limit 48" 2>/dev/null | grep -m1 "Buffers")
    echo "$db $line | $plan"
  fi
  sleep 1
done
