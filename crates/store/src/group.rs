//! Group commit: writes that arrive together are committed together. Each runs in its own
//! savepoint of one transaction, so one commit (one fsync on SQLite, one round of WAL flush on
//! PostgreSQL) carries them all, and one write's refusal or lost race leaves the others alone.
//! When one write's statement fails, the group is run again one write at a time, so each
//! write gets its own answer; when the transaction itself fails (no connection, a failed
//! commit), every write of the group gets that error at once, as each would have alone.

use std::future::Future;
use std::sync::OnceLock;

use sqlx::AnyConnection;

use crate::{Result, StoreError};

/// One kind of write the group committer runs.
pub(crate) trait GroupWrite: Send + Sync + 'static {
    type Outcome: Send + 'static;

    /// Runs the write in `conn`: a savepoint of the group's transaction, or (alone) its own
    /// transaction.
    fn apply(&self, conn: &mut AnyConnection)
    -> impl Future<Output = Result<Self::Outcome>> + Send;

    /// Whether `outcome` keeps what the write did (otherwise it is rolled back).
    fn keeps(outcome: &Self::Outcome) -> bool;
}

type Waiting<W> = (
    W,
    tokio::sync::oneshot::Sender<Result<<W as GroupWrite>::Outcome>>,
);

/// The committer of one kind of write: a task, started on first use, that takes the writes
/// waiting when its previous commit ends (at most [`GROUP`]) into its next one.
pub(crate) struct GroupCommit<W: GroupWrite> {
    sender: OnceLock<tokio::sync::mpsc::Sender<Waiting<W>>>,
}

impl<W: GroupWrite> Default for GroupCommit<W> {
    fn default() -> Self {
        GroupCommit {
            sender: OnceLock::new(),
        }
    }
}

/// The most writes one transaction carries.
const GROUP: usize = 64;

fn closed() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Commits `write` (with whatever else is waiting) and answers once it is durable.
    pub(crate) async fn write(&self, pool: &sqlx::AnyPool, write: W) -> Result<W::Outcome> {
        let sender = self.sender.get_or_init(|| {
            let (sender, waiting) = tokio::sync::mpsc::channel(1024);
            tokio::spawn(run(pool.clone(), waiting));
            sender
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        sender.send((write, reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run<W: GroupWrite>(
    pool: sqlx::AnyPool,
    mut waiting: tokio::sync::mpsc::Receiver<Waiting<W>>,
) {
    while let Some(first) = waiting.recv().await {
        let mut group = vec![first];
        while group.len() < GROUP {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        match commit(&pool, &group).await {
            Ok(outcomes) => {
                for ((_, reply), outcome) in group.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            // The group wrote nothing: each write goes alone, and gets its own answer.
            Err(Failed::Statement) => {
                for (write, reply) in group {
                    let _ = reply.send(alone(&pool, &write).await);
                }
            }
            Err(Failed::Transaction(e)) => {
                tracing::error!(error = %e, writes = group.len(), "a group commit failed");
                for (_, reply) in group {
                    let _ = reply.send(Err(shared(&e)));
                }
            }
        }
    }
}

/// Why a group wrote nothing.
enum Failed {
    /// One write's own statement failed (a constraint, say): the others may well succeed.
    Statement,
    /// The transaction failed as a whole (no connection, a failed savepoint or commit).
    Transaction(StoreError),
}

/// The error each write of a failed group is answered (errors are not `Clone`).
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::Database(sqlx::Error::PoolTimedOut) => {
            StoreError::Database(sqlx::Error::PoolTimedOut)
        }
        StoreError::Database(sqlx::Error::PoolClosed) => closed(),
        other => StoreError::Database(sqlx::Error::Protocol(format!("group commit: {other}"))),
    }
}

async fn commit<W: GroupWrite>(
    pool: &sqlx::AnyPool,
    group: &[Waiting<W>],
) -> std::result::Result<Vec<W::Outcome>, Failed> {
    use sqlx::Acquire as _;
    let whole = |e: sqlx::Error| Failed::Transaction(e.into());
    let mut tx = pool.begin().await.map_err(whole)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for (write, _) in group {
        let mut savepoint = (&mut *tx).begin().await.map_err(whole)?;
        let outcome = write.apply(&mut savepoint).await.map_err(|e| match e {
            // The database refused this statement: the others may well succeed.
            StoreError::Conflict | StoreError::Database(sqlx::Error::Database(_)) => {
                Failed::Statement
            }
            e => Failed::Transaction(e),
        })?;
        if W::keeps(&outcome) {
            savepoint.commit().await.map_err(whole)?;
        } else {
            savepoint.rollback().await.map_err(whole)?;
        }
        outcomes.push(outcome);
    }
    tx.commit().await.map_err(whole)?;
    Ok(outcomes)
}

async fn alone<W: GroupWrite>(pool: &sqlx::AnyPool, write: &W) -> Result<W::Outcome> {
    let mut tx = pool.begin().await?;
    let outcome = write.apply(&mut tx).await?;
    if W::keeps(&outcome) {
        tx.commit().await?;
    }
    Ok(outcome)
}
