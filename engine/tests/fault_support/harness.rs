//! What every fault scenario needs: a group of real `outbox-relay` processes on one
//! database, a writer under load, signals, and the figures each scenario reports.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use outbox_engine::{enqueue_batch, NewEvent};

use crate::support::*;

/// Long mode (`make faults`): more rounds, longer outages.
pub fn long_mode() -> bool {
    std::env::var("OUTBOX_FAULTS").is_ok_and(|v| v == "long")
}

pub fn rounds(short: usize, long: usize) -> usize {
    if long_mode() {
        long
    } else {
        short
    }
}

/// Relay settings of the suite: short leases so that takeovers happen within seconds.
pub const LEASE_MS: u64 = 3_000;
pub const PARTITIONS: u32 = 6;

pub fn write_config(db: &TestDb, name: &str, operation_timeout_ms: u64) -> PathBuf {
    write_config_for(&db.url, name, operation_timeout_ms)
}

pub fn write_config_for(database_url: &str, name: &str, operation_timeout_ms: u64) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("faults");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "database_url = {:?}\npartitions = {PARTITIONS}\nlease_ms = {LEASE_MS}\n\
             lease_renew_interval_ms = 200\ncycle_timeout_ms = {}\nretry_backoff_max_ms = 1000\n\
             shutdown_timeout_ms = 20000\n[pulsar]\nurl = {:?}\noperation_timeout_ms = {operation_timeout_ms}\n",
            database_url,
            operation_timeout_ms + 10_000,
            pulsar_url()
        ),
    )
    .unwrap();
    path
}

/// One `outbox-relay run` process; its log goes to a file the scenario can read.
pub struct RelayProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl RelayProcess {
    pub fn start(config: &std::path::Path, name: &str) -> RelayProcess {
        let log = config.with_file_name(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_outbox-relay"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .env("RUST_LOG", "info,pulsar=error")
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .env_remove("PULSAR_URL")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("cannot start outbox-relay");
        RelayProcess { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit (bounded).
    pub fn stop(mut self) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "relay exited with {status} after SIGTERM");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "relay did not stop within 40 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RelayProcess {
    /// A scenario that fails midway must not leave relays running behind it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-CONT", &self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes events on `keys` keys in transactions of `per_tx` until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<i64>>,
}

impl Writer {
    pub async fn start(
        db: &TestDb,
        topic: &str,
        keys: usize,
        per_tx: usize,
        payload: usize,
    ) -> Writer {
        let mut conn = db.connect().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let topic = topic.to_owned();
        let url = db.url.clone();
        let task = tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut n = 0usize;
            while !AtomicBool::load(&flag, Ordering::Relaxed) {
                let events: Vec<NewEvent> = (0..per_tx)
                    .map(|i| {
                        NewEvent::new(
                            format!("k{}", (n + i) % keys),
                            topic.as_str(),
                            "Tick",
                            vec![b'x'; payload],
                        )
                    })
                    .collect();
                n += per_tx;
                match enqueue_batch(&mut conn, &events).await {
                    Ok(seqs) => committed.extend(seqs),
                    // A database restart or a terminated session: the transaction did not
                    // commit, so nothing is expected from it; reconnect and go on.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if let Ok(fresh) =
                            <AsyncPgConnection as diesel_async::AsyncConnection>::establish(&url)
                                .await
                        {
                            conn = fresh;
                        }
                        continue;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            committed
        });
        Writer { stop, task }
    }

    pub async fn finish(self) -> HashSet<i64> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap().into_iter().collect()
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Waits until every range is owned by a live relay other than the process `pid`;
/// returns how long that took.
pub async fn wait_for_takeover(
    conn: &mut AsyncPgConnection,
    pid: u32,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let row: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM outbox_lease l WHERE l.owner IS NULL OR l.expires_at <= now() \
               OR l.owner LIKE $1 OR NOT EXISTS (SELECT 1 FROM outbox_relay r WHERE r.relay_id = l.owner)",
        )
        .bind::<Text, _>(format!("%-{pid}-%"))
        .get_result(conn)
        .await
        .unwrap();
        if row.n == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "ranges of relay {pid} not taken over within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `count` relays each own at least one range and every range is owned.
pub async fn wait_for_spread(
    conn: &mut AsyncPgConnection,
    count: i64,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let owners: Count = diesel::sql_query(
            "SELECT count(DISTINCT owner) AS n FROM outbox_lease WHERE owner IS NOT NULL AND expires_at > now()",
        )
        .get_result(conn)
        .await
        .unwrap();
        let unowned: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM outbox_lease WHERE owner IS NULL OR expires_at <= now()",
        )
        .get_result(conn)
        .await
        .unwrap();
        if owners.n == count && unowned.n == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "ranges not spread over {count} relays within {limit:?} ({} owners, {} unowned)",
            owners.n,
            unowned.n
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One line per scenario, the same shape everywhere (docs/reliability.md copies them).
pub fn report(
    scenario: &str,
    subscription: &Subscription,
    committed: &HashSet<i64>,
    recovery: &str,
) {
    let ledger = &subscription.ledger;
    println!(
        "fault-report | {scenario} | events {} | lost {} | reordered {} | duplicates {} | recovery {recovery}",
        committed.len(),
        ledger.missing(committed).len(),
        ledger.reorders.len(),
        ledger.duplicates,
    );
}

/// Collects until every committed event arrived, then a little more for stragglers.
pub async fn settle(subscription: &mut Subscription, committed: &HashSet<i64>) {
    subscription
        .collect_until_seen(committed, Duration::from_secs(120))
        .await;
    subscription.drain(Duration::from_secs(3)).await;
}

/// A TCP proxy the test controls, between the relays and PostgreSQL: [`TcpProxy::cut`]
/// drops every connection and refuses new ones (closing them at once) until
/// [`TcpProxy::restore`].
pub struct TcpProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> TcpProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (cut_flag, gen) = (cut.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if AtomicBool::load(&cut_flag, Ordering::Relaxed) {
                    continue; // dropped: the client sees the connection closed
                }
                let born = std::sync::atomic::AtomicU64::load(&gen, Ordering::Relaxed);
                let (cut_flag, gen) = (cut_flag.clone(), gen.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let severed = async {
                        while std::sync::atomic::AtomicU64::load(&gen, Ordering::Relaxed) == born
                            && !AtomicBool::load(&cut_flag, Ordering::Relaxed)
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = severed => {}
                    }
                });
            }
        });
        TcpProxy {
            port,
            cut,
            generation,
        }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::Relaxed);
    }
}

/// `url` with its port replaced.
pub fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    parsed.set_port(Some(port)).unwrap();
    parsed.to_string()
}

/// A scenario's fixtures: a throwaway database, a topic, the relays' config file and the
/// relay processes, plus a connection for the scenario's own queries.
pub struct Group {
    pub name: String,
    pub db: TestDb,
    pub topic: String,
    pub config: PathBuf,
    pub relays: Vec<RelayProcess>,
    pub conn: AsyncPgConnection,
}

impl Group {
    /// Fixtures without relays, and a subscription to the topic opened before anything
    /// is published.
    pub async fn new(name: &str, operation_timeout_ms: u64) -> (Group, Subscription) {
        let db = TestDb::create().await;
        let topic = unique(&format!("f_{name}"));
        let subscription = subscribe(&[&topic]).await;
        let config = write_config(&db, name, operation_timeout_ms);
        let conn = db.connect().await;
        let group = Group {
            name: name.to_owned(),
            db,
            topic,
            config,
            relays: Vec::new(),
            conn,
        };
        (group, subscription)
    }

    /// [`Group::new`], then `relays` relays, waiting until the ranges are spread over them.
    pub async fn start(
        name: &str,
        relays: usize,
        operation_timeout_ms: u64,
    ) -> (Group, Subscription) {
        let (mut group, subscription) = Group::new(name, operation_timeout_ms).await;
        for _ in 0..relays {
            group.add_relay();
        }
        wait_for_spread(&mut group.conn, relays as i64, Duration::from_secs(30)).await;
        (group, subscription)
    }

    /// Starts one more relay (its log file is named after the group and a counter).
    pub fn add_relay(&mut self) -> &RelayProcess {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        self.relays.push(RelayProcess::start(
            &self.config,
            &format!("{}-{n}", self.name),
        ));
        self.relays.last().expect("pushed just above")
    }

    pub async fn writer(&self, payload: usize) -> Writer {
        Writer::start(&self.db, &self.topic, 300, 20, payload).await
    }

    /// Stops every relay gracefully and drops the database.
    pub async fn finish(self) {
        for relay in self.relays {
            relay.stop();
        }
        drop(self.conn);
        self.db.drop_now().await;
    }
}

/// The Pulsar broker that `make services` started, paused and resumed by signals.
pub struct Broker {
    pid: String,
}

impl Broker {
    pub fn paused_by_this_test() -> Broker {
        let file = std::env::var("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache/outbox-engine/pulsar.pid");
        let pid = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot read the broker's pid file {} ({e}): a broker you run yourself cannot be paused by this test",
                    file.display()
                )
            })
            .trim()
            .to_owned();
        Broker { pid }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "kill -{signal} {} (the broker) failed",
            self.pid
        );
    }
}

/// Waits until the lease table has `count` ranges, all owned.
pub async fn wait_for_ranges(conn: &mut AsyncPgConnection, count: i64, limit: Duration) {
    let started = Instant::now();
    loop {
        let ranges: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM outbox_lease WHERE owner IS NOT NULL AND expires_at > now()",
        )
        .get_result(conn)
        .await
        .unwrap();
        let total: Count = diesel::sql_query("SELECT count(*) AS n FROM outbox_lease")
            .get_result(conn)
            .await
            .unwrap();
        if ranges.n == count && total.n == count {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "not {count} owned ranges within {limit:?} ({} of {})",
            ranges.n,
            total.n
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `work` while reading the subscription, so nothing piles up at the broker.
pub async fn read_while<F: std::future::Future>(
    subscription: &mut Subscription,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = subscription.collect_at_least(usize::MAX, Duration::from_millis(200)) => {}
        }
    }
}

/// Reads the subscription for `duration` while the scenario's load goes on.
pub async fn keep_reading(subscription: &mut Subscription, duration: Duration) {
    read_while(subscription, tokio::time::sleep(duration)).await;
}

/// Stops the writer and reads until everything it committed arrived; returns that set.
pub async fn finish_writing(writer: Writer, subscription: &mut Subscription) -> HashSet<i64> {
    let committed = writer.finish().await;
    settle(subscription, &committed).await;
    committed
}

impl Drop for Broker {
    /// A scenario that fails while the broker is paused must not leave it paused for the
    /// tests after it.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}
