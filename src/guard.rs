//! The one drop guard of an exchange: pending → streaming → recorded.
//!
//! The service makes it with the request side of an [`Exchange`]; the future holds it until
//! the response head arrives, then moves it into the body, which feeds it the response.
//! Whatever way the exchange ends — the body's end, a body error, the inner service's error,
//! or a drop of the future or of the body — the guard hands exactly one record to the writer.
//! Dropped before the response head or before the body's end, the client went away: the
//! exchange is recorded as `cancelled`. A [`Settlement`] taken from the request extensions is
//! completed with that same record, just before it goes to the writer.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

pub(crate) use crate::account::End;
use crate::account::Exchange;
use crate::record::{ActivityRecord, ProviderError};
use crate::settings::Settings;
use crate::settlement::Settlement;

/// See the module docs. One allocation per exchange (the box), made when the request enters.
pub(crate) struct ExchangeGuard {
    settings: Arc<Settings>,
    /// `None` once recorded.
    exchange: Option<Box<Exchange>>,
    /// An outer layer's hook for the record (see [`Settlement`]).
    settlement: Option<Settlement>,
}

impl std::fmt::Debug for ExchangeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeGuard")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl ExchangeGuard {
    /// A guard for a request that has just entered the layer, with the settlement its
    /// extensions carried.
    pub(crate) fn new(
        settings: Arc<Settings>,
        exchange: Box<Exchange>,
        settlement: Option<Settlement>,
    ) -> Self {
        ExchangeGuard {
            settings,
            exchange: Some(exchange),
            settlement,
        }
    }

    /// The layer's settings.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The request side, while no response exists.
    pub(crate) fn pending_mut(&mut self) -> Option<&mut Exchange> {
        self.exchange.as_deref_mut().filter(|e| !e.responded())
    }

    /// The response head arrived: start reading its body. Returns whether the layer rewrites
    /// the body's bytes (then `Content-Length` must go).
    pub(crate) fn respond(&mut self, status: StatusCode, headers: &HeaderMap) -> bool {
        match self.exchange.as_deref_mut() {
            Some(e) => e.respond(status, headers, &self.settings),
            None => false,
        }
    }

    /// The inner service failed instead of responding: an `error` record.
    pub(crate) fn fail(&mut self, error: ProviderError) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.without_response(Some(error), &self.settings);
            self.hand_over(exchange.record);
        }
    }

    /// Whether the record is still to be made.
    pub(crate) fn is_active(&self) -> bool {
        self.exchange.is_some()
    }

    /// One data frame of the response body. Returns the bytes to send instead when the
    /// stream is being stripped. In line, as is [`Exchange::on_data`]: the body's frame
    /// reaches the reader's scan without a call per step.
    #[inline]
    pub(crate) fn on_data(&mut self, data: &Bytes) -> Option<Bytes> {
        self.exchange.as_deref_mut().and_then(|e| e.on_data(data))
    }

    /// The exchange ended: writes the record. Returns bytes still held by a stripped stream,
    /// which the body must send before it ends.
    pub(crate) fn end(&mut self, end: End) -> Option<Bytes> {
        let mut exchange = self.exchange.take()?;
        let tail = exchange.finish(end, &self.settings);
        self.hand_over(exchange.record);
        tail
    }

    /// The one place a record leaves the guard: the settlement first, then the writer.
    #[inline]
    fn hand_over(&mut self, record: Box<ActivityRecord>) {
        if let Some(settlement) = self.settlement.take() {
            settlement.settle(&record);
        }
        self.settings.writer.enqueue(record);
    }
}

impl Drop for ExchangeGuard {
    fn drop(&mut self) {
        self.end(End::Dropped);
    }
}
