//! A batch's statements sent one after the other without waiting for each answer.
//!
//! tokio-postgres sends a statement the first time its future is polled and answers
//! statements in the order they were sent. [`Pipeline::run`] polls every future once, in
//! the order they were pushed, before it waits for any: the statements of a batch run in
//! log order, and the batch costs about one round trip instead of one per statement. A
//! read model whose events each become statements decided by the event alone (and, where
//! it needs a row the batch did not write, one read before) pushes them here.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tokio_postgres::types::ToSql;

use crate::registry::Tx;

/// A parameter held by the pipeline until its statement is sent (owned, or borrowed from
/// the batch's events).
pub type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// `params![a, b]`: the parameters of one statement.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        vec![$(Box::new($value) as $crate::pipeline::Param<'_>),*]
    };
}
pub(crate) use params;

pub struct Pipeline<'a> {
    tx: &'a Tx<'a>,
    pending: Vec<Statement<'a>>,
}

impl<'a> Pipeline<'a> {
    pub fn new(tx: &'a Tx<'a>) -> Self {
        Self {
            tx,
            pending: Vec::new(),
        }
    }

    /// Queues `sql` with `params`; nothing is sent until [`Pipeline::run`].
    pub async fn push(
        &mut self,
        sql: &'static str,
        params: Vec<Param<'a>>,
    ) -> Result<(), tokio_postgres::Error> {
        let statement = self.tx.prepare_cached(sql).await?;
        let tx = self.tx;
        self.pending.push(Box::pin(async move {
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&statement, &refs).await
        }));
        Ok(())
    }

    /// The transaction, for a statement whose answer is needed: [`Pipeline::flush`] first.
    pub fn tx(&self) -> &'a Tx<'a> {
        self.tx
    }

    /// Sends every queued statement in order and waits for all of their answers; the first
    /// error ends it (the transaction is then aborted anyway).
    pub async fn flush(&mut self) -> Result<(), tokio_postgres::Error> {
        InOrder {
            pending: std::mem::take(&mut self.pending)
                .into_iter()
                .map(Some)
                .collect(),
            sent: false,
            done: 0,
        }
        .await
    }

    /// Flushes, at the end of a batch.
    pub async fn run(mut self) -> Result<(), tokio_postgres::Error> {
        self.flush().await
    }
}

type Statement<'a> = BoxFuture<'a, Result<u64, tokio_postgres::Error>>;

/// Polls every future once in order, then waits for them front to back.
struct InOrder<'a> {
    /// `None` once finished (a finished future must not be polled again).
    pending: Vec<Option<Statement<'a>>>,
    sent: bool,
    /// Futures before this index have finished.
    done: usize,
}

impl Future for InOrder<'_> {
    type Output = Result<(), tokio_postgres::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if !this.sent {
            this.sent = true;
            // Each first poll sends its statement.
            for slot in this.pending.iter_mut() {
                if let Some(future) = slot
                    && let Poll::Ready(result) = future.as_mut().poll(cx)
                {
                    result?;
                    *slot = None;
                }
            }
        }
        // Answers come in the order sent: wait for the front one, then the next.
        while let Some(slot) = this.pending.get_mut(this.done) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        result?;
                        *slot = None;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.done += 1;
        }
        Poll::Ready(Ok(()))
    }
}
