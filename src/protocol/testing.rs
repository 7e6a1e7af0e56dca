//! What the trackers' tests share.

use super::{Observation, Tracker};
use crate::sse::SseEvent;

/// Feeds `events` (`(name, data)`; an empty name for a data-only event) to `tracker` as one
/// stream, each closed by its blank line, ends the stream, and returns what it observed.
pub(crate) fn feed(tracker: &mut impl Tracker, events: &[(&str, &str)]) -> Observation {
    let mut obs = Observation::default();
    for (name, data) in events {
        tracker.on_event(
            &SseEvent {
                name: name.as_bytes(),
                data: data.as_bytes(),
                complete: true,
            },
            &mut obs,
        );
    }
    tracker.finish(&mut obs);
    obs
}
