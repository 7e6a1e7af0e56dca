//! [`ScriptedSink`]: a sink whose answers, delays and gates a test scripts, for the writer's
//! tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep};
use tower_activity::sink::MemorySink;
use tower_activity::{ActivityRecord, ActivitySink, SinkError};
use uuid::Uuid;

/// How a [`ScriptedSink`] answers call number `n` (from 0) carrying `records`.
pub type Behaviour = dyn Fn(usize, &[ActivityRecord]) -> Result<(), SinkError> + Send + Sync;

/// One sink call: when it started and which records it carried.
#[derive(Clone)]
pub struct Call {
    /// When the call started.
    pub at: Instant,
    /// The ids of its records.
    pub ids: Vec<Uuid>,
}

/// A sink whose answers are scripted per call; successful calls land in `stored`.
#[derive(Clone)]
pub struct ScriptedSink {
    /// What the successful calls stored.
    pub stored: MemorySink,
    calls: Arc<Mutex<Vec<Call>>>,
    behaviour: Arc<Behaviour>,
    /// Each call takes this long (in paused time) before answering.
    delay: Duration,
    /// When set, calls wait until it is `true`.
    gate: Option<watch::Receiver<bool>>,
    /// Notified when a call starts.
    pub entered: Arc<Notify>,
}

impl ScriptedSink {
    /// A sink that answers each call with `behaviour`.
    pub fn new(
        behaviour: impl Fn(usize, &[ActivityRecord]) -> Result<(), SinkError> + Send + Sync + 'static,
    ) -> Self {
        ScriptedSink {
            stored: MemorySink::new(),
            calls: Arc::default(),
            behaviour: Arc::new(behaviour),
            delay: Duration::ZERO,
            gate: None,
            entered: Arc::new(Notify::new()),
        }
    }

    /// A sink that always succeeds.
    pub fn ok() -> Self {
        Self::new(|_, _| Ok(()))
    }

    /// Each call takes `delay` before answering.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Calls block until the returned sender says `true`.
    pub fn gated(mut self) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        self.gate = Some(rx);
        (self, tx)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The number of records of every call so far.
    pub fn call_sizes(&self) -> Vec<usize> {
        self.calls().iter().map(|c| c.ids.len()).collect()
    }
}

#[async_trait]
impl ActivitySink for ScriptedSink {
    async fn write(&self, records: &[ActivityRecord]) -> Result<(), SinkError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Call {
                at: Instant::now(),
                ids: records.iter().map(|r| r.id).collect(),
            });
            calls.len() - 1
        };
        self.entered.notify_one();
        if let Some(gate) = &self.gate {
            let mut gate = gate.clone();
            gate.wait_for(|open| *open).await.unwrap();
        }
        if !self.delay.is_zero() {
            sleep(self.delay).await;
        }
        (self.behaviour)(n, records)?;
        self.stored.write(records).await
    }
}
