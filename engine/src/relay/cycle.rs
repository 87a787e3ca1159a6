//! One partition cycle: read a page of the range's current batch, publish it, and record
//! how far the range got (in the background, see [`super::acker`]).
//!
//! Batches (docs/architecture.md, "Storage"): a batch is every event of the range whose
//! transaction became visible between the range's `done` snapshot and the batch
//! snapshot, published in sequence order, page by page. The rule that keeps order and
//! loses nothing: the position only moves past a *sequence prefix* of the page that the
//! broker acknowledged (or that was parked). After a transient failure the next cycle
//! reads the same batch again from the first unacknowledged event. A permanent failure
//! (the broker refuses the topic, unreadable headers) parks that one event with the
//! reason, so a poison event never blocks the range forever.

use std::collections::VecDeque;
use std::sync::Arc;

use outbox_adapters::{PublishError, PulsarPublisher};

use super::acker::Acker;
use super::batch::{done_prefix, group_by_topic, to_events, RowKey};
use super::prefetch::{Expected, Fetched, Prefetch};
use super::quarantine::{self, Quarantine};

use crate::lease::Lease;
use crate::store::{self, CompletedBatch, Pool, ProgressUpdate, SnapshotText, StoreError};

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CycleReport {
    pub read: usize,
    pub published: usize,
    pub parked: usize,
    pub last_seq: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Publishing failed at this row (events before it were acknowledged).
    #[error("{error} (first unacknowledged event: slot {slot}, seq {seq})")]
    FailedAt {
        slot: i32,
        seq: i64,
        error: PublishError,
    },
    /// The lease's local deadline passed (not renewed in time) or it was revoked: the
    /// partition must not publish for the range any more.
    #[error("lease of range {0} is no longer valid; publishing stopped")]
    LeaseExpired(String),
}

impl CycleError {
    /// What failed, for the retry metric: `database`, `broker` or `lease`.
    pub fn class(&self) -> &'static str {
        match self {
            CycleError::Store(StoreError::Fenced { .. }) | CycleError::LeaseExpired(_) => "lease",
            CycleError::Store(_) => "database",
            CycleError::Publish(_) | CycleError::FailedAt { .. } => "broker",
        }
    }

    /// True when the range is no longer this relay's: stop, do not retry.
    pub fn is_lease_lost(&self) -> bool {
        matches!(
            self,
            CycleError::LeaseExpired(_) | CycleError::Store(StoreError::Fenced { .. })
        )
    }
}

fn check_lease(lease: &Lease) -> Result<(), CycleError> {
    if lease.is_valid() {
        Ok(())
    } else {
        Err(CycleError::LeaseExpired(lease.range.to_string()))
    }
}

/// The batch being published.
#[derive(Debug, Clone)]
struct OpenBatch {
    snapshot: SnapshotText,
    /// Every event of the batch with a sequence number up to this one is done.
    after_seq: i64,
    /// The remaining keys of a large batch, listed by its first read (see
    /// [`store::read_page`]).
    keys: Option<VecDeque<(i64, i64)>>,
    /// Events of the batch done so far (those up to `after_seq`).
    done: i64,
    published: i64,
    parked: i64,
}

impl OpenBatch {
    fn new(snapshot: SnapshotText, after_seq: i64, done: i64) -> Self {
        OpenBatch {
            snapshot,
            after_seq,
            keys: None,
            done,
            published: 0,
            parked: 0,
        }
    }
}

/// Where the range stands, in memory; the acker records it.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    done: SnapshotText,
    open: Option<OpenBatch>,
    /// After a re-cut, the old ranges' positions (events they published are skipped);
    /// dropped once this range completes its first batch.
    carried: Option<String>,
    /// Events of the range's completed batches: with the open batch's `done`, the base
    /// of the broker sequence ids of the next events (the same event always gets the
    /// same id, which broker deduplication relies on).
    events_done: i64,
}

impl Position {
    fn update(
        &self,
        published: i64,
        parked: i64,
        completed: Option<CompletedBatch>,
    ) -> ProgressUpdate {
        ProgressUpdate {
            done: self.done.clone(),
            open: self
                .open
                .as_ref()
                .map(|open| (open.snapshot.clone(), open.after_seq)),
            carried: self.carried.clone(),
            events_done: self.events_done,
            batch_done: self.open.as_ref().map_or(0, |open| open.done),
            published,
            parked,
            completed,
        }
    }
}

/// What a partition hands to each cycle and gets back: its producers, its position and
/// its progress write in flight.
#[derive(Debug)]
pub(crate) struct Worker {
    pub publisher: PulsarPublisher,
    /// Publishes the held events of released keys (see [`super::quarantine`]).
    pub release_publisher: PulsarPublisher,
    pub quarantine: Quarantine,
    pub relay_id: Arc<str>,
    /// Topics the broker refuses in a way that may heal (authorisation, topic not yet
    /// created), since when: retried until `topic_refusal_grace_ms`, then dead-lettered.
    pub refusals: Arc<super::partition::Refusals>,
    pub refusal_grace: std::time::Duration,
    pub acker: Acker,
    /// Loaded from the database by the first cycle.
    pub position: Option<Position>,
    /// The broker deduplication states last recorded for `status` (JSON), and how many
    /// topics that record covers.
    pub deduplication_reported: String,
    pub deduplication_known: usize,
    /// Where published counts and latencies go.
    pub stats: Arc<super::RelayStats>,
    /// The next page's read, started while this page was being published.
    pub prefetch: Option<Prefetch>,
}

/// An event that failed too many times in a row, to be parked before the next read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poison {
    pub slot: i32,
    pub seq: i64,
    pub reason: String,
    pub attempts: u32,
}

/// Runs one cycle. Returns the worker so the caller keeps its producers and position.
pub(crate) async fn run_cycle(
    pool: Pool,
    lease: Arc<Lease>,
    batch_size: usize,
    poison: Option<Poison>,
    mut worker: Worker,
) -> (Worker, Result<CycleReport, CycleError>) {
    let result = cycle(&pool, &lease, batch_size, poison, &mut worker).await;
    (worker, result)
}

/// Waits for the progress write in flight; call before stopping.
pub(crate) async fn finish(mut worker: Worker) {
    if let Err(error) = worker.acker.wait().await {
        tracing::warn!(%error, "last progress write failed; those events will be published again");
    }
    worker.publisher.close().await;
    worker.release_publisher.close().await;
}

/// The events of one page, with where each came from.
#[derive(Debug)]
struct Page {
    rows: Vec<store::EventRow>,
    /// Keys taken from a large batch's list for this page.
    taken: Vec<(i64, i64)>,
}

async fn read(
    pool: &Pool,
    lease: &Lease,
    position: &mut Position,
    batch_size: usize,
    prefetch: Option<Prefetch>,
) -> Result<Page, StoreError> {
    let prefetched = match prefetch {
        Some(prefetch) if prefetch_fits(position, &prefetch.expected, batch_size) => {
            prefetch.result().await
        }
        _ => None,
    };
    if let Some(keys) = position.open.as_mut().and_then(|open| open.keys.as_mut()) {
        return take_listed(
            keys,
            batch_size,
            async |taken: &[(i64, i64)]| match prefetched {
                Some(Fetched::Rows(rows)) => Ok(rows),
                _ => store::read_keys(&mut *pool.get().await?, lease, taken).await,
            },
        )
        .await;
    }
    let page = match prefetched {
        Some(Fetched::Page(page)) => page,
        _ => {
            let batch = position.open.as_ref().map(|open| open.snapshot.as_str());
            let after = position.open.as_ref().map_or(0, |open| open.after_seq);
            store::read_page(
                &mut *pool.get().await?,
                lease,
                &position.done,
                batch,
                after,
                batch_size,
                position.carried.as_deref(),
            )
            .await?
        }
    };
    let open = position
        .open
        .get_or_insert_with(|| OpenBatch::new(page.snapshot, 0, 0));
    // A large batch: its next pages come from the list. This page's keys count as taken
    // from it, so that what a failure leaves unpublished goes back to its front.
    let mut taken = Vec::new();
    if !page.rest.is_empty() {
        tracing::debug!(range = %lease.range, rest = page.rest.len(), "large batch: remaining keys listed");
        taken = page.events.iter().map(|e| (e.seq, e.tx)).collect();
        open.keys = Some(page.rest.into());
    }
    Ok(Page {
        rows: page.events,
        taken,
    })
}

/// True when a cycle at `position` would make exactly the read `expected` describes
/// (see [`super::prefetch`]).
fn prefetch_fits(position: &Position, expected: &Expected, batch_size: usize) -> bool {
    match (expected, &position.open) {
        (Expected::Listed { snapshot, keys }, Some(open)) => {
            *snapshot == open.snapshot
                && open
                    .keys
                    .as_ref()
                    .is_some_and(|listed| listed.iter().take(batch_size).eq(keys.iter()))
        }
        (Expected::NewBatch { done }, None) => *done == position.done && position.carried.is_none(),
        _ => false,
    }
}

/// The read the next cycle makes if the page just read is published whole: the next
/// listed keys of a large batch, or else a new batch after this one.
fn next_read(position: &Position, batch_size: usize) -> Option<Expected> {
    let open = position.open.as_ref()?;
    Some(match &open.keys {
        Some(keys) if !keys.is_empty() => Expected::Listed {
            snapshot: open.snapshot.clone(),
            keys: keys.iter().take(batch_size).copied().collect(),
        },
        _ => Expected::NewBatch {
            done: open.snapshot.clone(),
        },
    })
}

/// The next page of a large batch: the first `batch_size` listed keys, fetched by
/// `fetch`. They leave the list only once every one of their rows is in hand: a failed
/// read (a terminated session, a timeout) leaves the list as it was, so the batch cannot
/// complete without them. (It once drained them first, and a read that failed there
/// dropped its keys for good: events recorded as published that never were.)
async fn take_listed(
    keys: &mut VecDeque<(i64, i64)>,
    batch_size: usize,
    fetch: impl AsyncFnOnce(&[(i64, i64)]) -> Result<Vec<store::EventRow>, StoreError>,
) -> Result<Page, StoreError> {
    let take = keys.len().min(batch_size);
    let taken: Vec<(i64, i64)> = keys.iter().take(take).copied().collect();
    let rows = fetch(&taken).await?;
    if rows.len() != taken.len() {
        return Err(StoreError::Query(format!(
            "{} of {} listed events of the open batch could not be read back; the batch is read again",
            taken.len() - rows.len(),
            taken.len()
        )));
    }
    keys.drain(..take);
    Ok(Page { rows, taken })
}

async fn load_position(pool: &Pool, lease: &Lease) -> Result<Position, StoreError> {
    let mut conn = pool.get().await?;
    let stored = store::load_progress(&mut conn, lease).await?;
    Ok(Position {
        done: stored.done_snapshot,
        // What the batch had done before this restart counts in its audit row too, so
        // that the row covers every event of the batch (`outbox-relay audit` checks
        // that). The store keeps no split, so those events count as published.
        open: stored.batch_snapshot.map(|snapshot| OpenBatch {
            published: stored.batch_done,
            ..OpenBatch::new(snapshot, stored.batch_seq, stored.batch_done)
        }),
        carried: stored.carried,
        events_done: stored.events_done,
    })
}

/// Dead-letters one event and quarantines its key (in the database and in `quarantine`).
async fn park(
    pool: &Pool,
    lease: &Lease,
    quarantine: &mut Quarantine,
    row: RowKey,
    reason: &str,
    attempts: u32,
) -> Result<(), CycleError> {
    tracing::error!(range = %lease.range, slot = row.slot, seq = row.seq, %reason, "dead-lettering an event that can never be published; its key is quarantined, the other keys go on");
    let mut conn = pool.get().await.map_err(StoreError::from)?;
    let key = store::park(&mut conn, lease, row.seq, row.tx, reason, attempts as i32).await?;
    if let Some(key) = key {
        quarantine.add(key);
    }
    Ok(())
}

/// Holds the page's events whose key is quarantined: copied behind the key's dead letter,
/// taken out of what is sent. Returns the rows held.
async fn hold_quarantined(
    pool: &Pool,
    lease: &Lease,
    quarantine: &Quarantine,
    converted: &mut super::batch::Converted,
) -> Result<Vec<RowKey>, CycleError> {
    if quarantine.is_empty() {
        return Ok(Vec::new());
    }
    let held: Vec<usize> = (0..converted.events.len())
        .filter(|&i| quarantine.contains(&converted.events[i].key))
        .collect();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    check_lease(lease)?;
    let rows: Vec<(i64, i64)> = held
        .iter()
        .map(|&i| (converted.keys[i].seq, converted.keys[i].tx))
        .collect();
    {
        let mut conn = pool.get().await.map_err(StoreError::from)?;
        store::dead_letters::hold(&mut conn, lease, &rows).await?;
    }
    let taken = take_out(converted, &held);
    tracing::debug!(range = %lease.range, held = taken.len(), "events of quarantined keys held");
    Ok(taken)
}

/// Takes the readable rows at `indexes` (ascending) out of the page, so they are not
/// sent; returns their keys. The unreadable row, which follows every readable one, moves
/// up by as many.
fn take_out(converted: &mut super::batch::Converted, indexes: &[usize]) -> Vec<RowKey> {
    let mut taken = Vec::with_capacity(indexes.len());
    for &i in indexes.iter().rev() {
        taken.push(converted.keys.remove(i));
        converted.events.remove(i);
    }
    converted.unreadable = converted
        .unreadable
        .take()
        .map(|(i, reason)| (i - indexes.len(), reason));
    taken
}

/// (topic, events) for each run of one topic in the send order.
fn topic_runs(events: &[outbox_adapters::OutgoingEvent]) -> Vec<(String, usize)> {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for event in events {
        match runs.last_mut() {
            Some((topic, count)) if *topic == event.topic => *count += 1,
            _ => runs.push((event.topic.clone(), 1)),
        }
    }
    runs
}

/// Counts the acknowledged events per topic (they are the first `done` of the send
/// order) and observes each one's latency from its writer's transaction.
fn record_published(
    metrics: &crate::metrics::Metrics,
    runs: &[(String, usize)],
    created: &[(i64, f64)],
    done: &[RowKey],
) {
    let mut left = done.len();
    for (topic, count) in runs {
        let counted = left.min(*count);
        let full = outbox_adapters::full_topic_name(topic).unwrap_or_else(|_| topic.clone());
        metrics.published(&full, counted as u64);
        left -= counted;
        if left == 0 {
            break;
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    for row in done {
        if let Ok(index) = created.binary_search_by_key(&row.seq, |(seq, _)| *seq) {
            metrics.latency.observe((now - created[index].1).max(0.0));
        }
    }
}

/// Records, when it changed, whether the broker deduplicates each topic the range
/// publishes to. A failed write is only logged: it is for `status`, not for delivery.
async fn report_deduplication(pool: &Pool, lease: &Lease, worker: &mut Worker) {
    // Checked every cycle, so only a count: the report is built when a state was learned.
    let known = worker.publisher.deduplication_known();
    if known == worker.deduplication_known {
        return;
    }
    let states = worker.publisher.deduplication();
    let object: serde_json::Map<String, serde_json::Value> = states
        .into_iter()
        .map(|(topic, state)| (topic, serde_json::Value::String(state.label())))
        .collect();
    let json = serde_json::Value::Object(object).to_string();
    if json == worker.deduplication_reported {
        worker.deduplication_known = known;
        return;
    }
    let written = match pool.get().await {
        Ok(mut conn) => store::record_deduplication(&mut conn, lease, &json).await,
        Err(error) => Err(error.into()),
    };
    match written {
        Ok(()) => {
            worker.deduplication_reported = json;
            worker.deduplication_known = known;
        }
        Err(error) => {
            tracing::debug!(range = %lease.range, %error, "could not record the deduplication state")
        }
    }
}

async fn cycle(
    pool: &Pool,
    lease: &Arc<Lease>,
    batch_size: usize,
    poison: Option<Poison>,
    worker: &mut Worker,
) -> Result<CycleReport, CycleError> {
    let range = lease.range;
    let started = std::time::Instant::now();
    worker.acker.reap().await?;
    check_lease(lease)?;
    worker.quarantine.refresh(pool, range).await?;
    let mut released = 0;
    for key in worker.quarantine.releases() {
        check_lease(lease)?;
        let outcome = quarantine::release(
            pool,
            lease,
            &worker.relay_id,
            &mut worker.release_publisher,
            &mut worker.quarantine,
            &key,
        )
        .await?;
        released += outcome.published;
        worker
            .stats
            .metrics
            .released
            .inc_by(outcome.published as u64);
    }
    let mut position = match worker.position.take() {
        Some(position) => position,
        None => load_position(pool, lease).await?,
    };
    let prefetch = worker.prefetch.take();
    let page = read(pool, lease, &mut position, batch_size, prefetch).await;
    // Keep the position even if the read failed: it is still where the range stands.
    let page = match page {
        Ok(page) => page,
        Err(error) => {
            worker.position = Some(position);
            return Err(error.into());
        }
    };
    let read_at = started.elapsed();
    let read = page.rows.len();
    // (seq, created) in sequence order, for the latency of what gets acknowledged.
    let created: Vec<(i64, f64)> = page.rows.iter().map(|r| (r.seq, r.created_s)).collect();
    let mut converted = to_events(page.rows);
    // Broker sequence ids: the range's event counter, by position in the batch (the page
    // is in sequence order here, before grouping by topic).
    let base = position.events_done + position.open.as_ref().map_or(0, |open| open.done);
    for (index, event) in converted.events.iter_mut().enumerate() {
        event.sequence_id = (base + index as i64 + 1) as u64;
    }
    group_by_topic(&mut converted);

    let mut parked_now: Vec<RowKey> = Vec::new();
    if let Some(poison) = poison {
        if let Some(index) = converted.keys.iter().position(|k| k.seq == poison.seq) {
            let row = converted.keys[index];
            check_lease(lease)?;
            park(
                pool,
                lease,
                &mut worker.quarantine,
                row,
                &poison.reason,
                poison.attempts,
            )
            .await?;
            parked_now.push(row);
            // Dropped from what is sent (if it was readable); its row stays in the page's
            // bookkeeping through `parked_now`.
            if index < converted.events.len() {
                take_out(&mut converted, &[index]);
            }
        }
    }
    // Later events of a key quarantined before, or by the poison just parked.
    let held = hold_quarantined(pool, lease, &worker.quarantine, &mut converted).await?;
    parked_now.extend(held);
    let to_send = std::mem::take(&mut converted.events);

    // Checked before every chunk: the deadline is set well inside the lease's expiry, so
    // nobody can have taken the range over yet when a chunk leaves.
    let topic_runs = topic_runs(&to_send);
    if !to_send.is_empty() {
        worker.prefetch = next_read(&position, batch_size)
            .map(|expected| Prefetch::start(pool, lease, expected, batch_size));
    }
    let outcome = if to_send.is_empty() {
        outbox_adapters::PublishOutcome::default()
    } else {
        worker.publisher.publish(to_send, || lease.is_valid()).await
    };
    let published_at = started.elapsed();
    let acknowledged = outcome.acknowledged.min(converted.keys.len());
    let mut done_rows: Vec<RowKey> = converted.keys[..acknowledged].to_vec();
    let published = done_rows.len();
    let failed = converted.keys.get(acknowledged).copied();
    record_published(&worker.stats.metrics, &topic_runs, &created, &done_rows);

    let mut error: Option<CycleError> = None;
    if outcome.failure.is_none() && !topic_runs.is_empty() {
        worker.refusals.clear(&topic_runs, &worker.stats.metrics);
    }
    match (outcome.failure, converted.unreadable.clone()) {
        (Some(failure), _)
            if failure.is_permanent()
                && !worker.refusals.within_grace(
                    &failure,
                    worker.refusal_grace,
                    &worker.stats.metrics,
                ) =>
        {
            if let Some(row) = failed {
                park(
                    pool,
                    lease,
                    &mut worker.quarantine,
                    row,
                    &failure.to_string(),
                    1,
                )
                .await?;
                parked_now.push(row);
                done_rows.push(row);
            }
        }
        (Some(PublishError::Halted), _) => {
            error = Some(CycleError::LeaseExpired(range.to_string()));
        }
        (Some(failure), _) => {
            error = Some(match failed {
                Some(row) => CycleError::FailedAt {
                    slot: row.slot,
                    seq: row.seq,
                    error: failure,
                },
                None => failure.into(),
            });
        }
        (None, Some((index, reason))) if index == acknowledged => {
            if let Some(row) = failed {
                park(pool, lease, &mut worker.quarantine, row, &reason, 1).await?;
                parked_now.push(row);
                done_rows.push(row);
            }
        }
        (None, _) => {}
    }

    // The position moves past the sequence prefix of the page that is done; anything
    // acknowledged after a gap is published again by the next cycle (per topic and key
    // still in order). Keys of a large batch beyond it go back to the front of the list.
    let done_seqs: std::collections::HashSet<i64> =
        done_rows.iter().chain(&parked_now).map(|k| k.seq).collect();
    let mut all_rows: Vec<RowKey> = converted.keys.clone();
    for parked in &parked_now {
        if !all_rows.iter().any(|k| k.seq == parked.seq) {
            all_rows.push(*parked);
        }
    }
    let prefix = done_prefix(&all_rows, &done_seqs);
    let open = position.open.as_mut().expect("read opened a batch");
    let page_done = prefix.first_open.is_none();
    if let Some(through) = prefix.through {
        open.after_seq = open.after_seq.max(through);
        open.done += all_rows.iter().filter(|k| k.seq <= through).count() as i64;
    }
    if let (Some(keys), Some(first_open)) = (open.keys.as_mut(), prefix.first_open) {
        for key in page.taken.iter().rev().filter(|k| k.0 >= first_open) {
            keys.push_front(*key);
        }
    }
    open.published += published as i64;
    open.parked += parked_now.len() as i64;

    let had_carried = position.carried.is_some();
    let batch_complete =
        page_done && error.is_none() && open.keys.as_ref().is_none_or(|keys| keys.is_empty());
    let completed = if batch_complete {
        let open = position.open.take().expect("open batch");
        let from = std::mem::replace(&mut position.done, open.snapshot.clone());
        position.events_done += open.done;
        // The new done snapshot was taken after the re-cut: it sees everything the old
        // ranges had published, so their positions are no longer needed.
        position.carried = None;
        (open.published + open.parked > 0).then_some(CompletedBatch {
            from,
            to: open.snapshot,
            events: open.published,
            parked: open.parked,
        })
    } else {
        None
    };
    let carried_dropped = had_carried && position.carried.is_none();
    let moved = published > 0 || !parked_now.is_empty() || completed.is_some() || carried_dropped;
    let save = moved || (batch_complete && worker.acker.idle_save_due());
    let update = position.update(published as i64, parked_now.len() as i64, completed);
    worker.position = Some(position);
    if save {
        worker.acker.submit(pool, lease, update).await?;
    }
    report_deduplication(pool, lease, worker).await;
    tracing::debug!(
        range = %range,
        rows = read,
        read_us = read_at.as_micros() as u64,
        publish_us = (published_at - read_at).as_micros() as u64,
        "cycle"
    );
    if let Some(error) = error {
        return Err(error);
    }
    Ok(CycleReport {
        read: read + released,
        published: published + released,
        parked: parked_now.len(),
        last_seq: done_rows.iter().map(|k| k.seq).max().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, tx: i64) -> store::EventRow {
        store::EventRow {
            slot: 0,
            seq,
            key: "k".into(),
            topic: "t".into(),
            event_type: "E".into(),
            payload: Vec::new(),
            headers: "{}".into(),
            event_id: String::new(),
            tx,
            created_s: 0.0,
        }
    }

    fn listed() -> VecDeque<(i64, i64)> {
        (1..=5).map(|seq| (seq, 100 + seq)).collect()
    }

    fn position(open: Option<OpenBatch>) -> Position {
        Position {
            done: "10:10:".into(),
            open,
            carried: None,
            events_done: 0,
        }
    }

    fn listed_batch(keys: &[(i64, i64)]) -> OpenBatch {
        OpenBatch {
            keys: Some(keys.iter().copied().collect()),
            ..OpenBatch::new("20:20:".into(), 0, 0)
        }
    }

    #[test]
    fn the_next_read_of_a_large_batch_is_its_next_listed_keys() {
        let at = position(Some(listed_batch(&[(4, 104), (5, 105), (6, 106)])));
        let expected = next_read(&at, 2).unwrap();
        assert_eq!(
            expected,
            Expected::Listed {
                snapshot: "20:20:".into(),
                keys: vec![(4, 104), (5, 105)],
            }
        );
        // Published whole: the list is untouched, the prefetch is used.
        assert!(prefetch_fits(&at, &expected, 2));
        // A failure pushed this page's unpublished keys back to the front: not used.
        let mut failed = at.clone();
        failed
            .open
            .as_mut()
            .unwrap()
            .keys
            .as_mut()
            .unwrap()
            .push_front((3, 103));
        assert!(!prefetch_fits(&failed, &expected, 2));
    }

    #[test]
    fn the_next_read_after_a_whole_batch_is_a_new_batch_after_its_snapshot() {
        let at = position(Some(OpenBatch::new("20:20:".into(), 0, 0)));
        let expected = next_read(&at, 1000).unwrap();
        assert_eq!(
            expected,
            Expected::NewBatch {
                done: "20:20:".into()
            }
        );
        // The batch completed: its snapshot is now the done one.
        let completed = Position {
            done: "20:20:".into(),
            open: None,
            ..at.clone()
        };
        assert!(prefetch_fits(&completed, &expected, 1000));
        // It did not (a failure left it open): not used.
        assert!(!prefetch_fits(&at, &expected, 1000));
        // Old ranges' positions still carried (re-cut): not what the prefetch read.
        let carried = Position {
            carried: Some("{}".into()),
            ..completed.clone()
        };
        assert!(!prefetch_fits(&carried, &expected, 1000));
        // Another done snapshot: not used.
        let elsewhere = Position {
            done: "30:30:".into(),
            ..completed
        };
        assert!(!prefetch_fits(&elsewhere, &expected, 1000));
        assert_eq!(next_read(&position(None), 1000), None);
    }

    #[tokio::test]
    async fn a_failed_read_of_listed_keys_leaves_them_listed() {
        let mut keys = listed();
        let result = take_listed(&mut keys, 3, async |_: &[(i64, i64)]| {
            Err(StoreError::Unavailable("terminated by the server".into()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(
            keys,
            listed(),
            "keys left the list although their read failed"
        );
    }

    #[tokio::test]
    async fn rows_missing_from_a_read_leave_the_keys_listed() {
        let mut keys = listed();
        let result = take_listed(&mut keys, 3, async |taken: &[(i64, i64)]| {
            Ok(taken[..2].iter().map(|&(seq, tx)| row(seq, tx)).collect())
        })
        .await;
        assert!(matches!(result, Err(StoreError::Query(_))), "{result:?}");
        assert_eq!(keys, listed());
    }

    #[tokio::test]
    async fn a_read_that_got_every_row_takes_its_keys_off_the_list() {
        let mut keys = listed();
        let page = take_listed(&mut keys, 3, async |taken: &[(i64, i64)]| {
            Ok(taken.iter().map(|&(seq, tx)| row(seq, tx)).collect())
        })
        .await
        .unwrap();
        assert_eq!(page.taken, vec![(1, 101), (2, 102), (3, 103)]);
        assert_eq!(page.rows.len(), 3);
        assert_eq!(keys, VecDeque::from(vec![(4, 104), (5, 105)]));
    }
}
