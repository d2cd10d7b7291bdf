//! The plugin runner's wire format: length-prefixed, versioned binary frames over the child's
//! stdin and stdout.
//!
//! A frame is a little-endian `u32` length `n`, then `n` bytes: one byte of
//! [`PROTOCOL_VERSION`], then the message in postcard. The messages are the serde types of the
//! plugin API ([`super::HookCall`], [`super::remote::HostRequest`], …); the manifest, whose
//! internally tagged enums postcard cannot carry, travels as its JSON text.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::remote::{HostReply, HostRequest, Snapshot};
use super::{HookCall, HookResult};

/// The version byte of every frame; parent and child must agree (they are the same binary).
pub(crate) const PROTOCOL_VERSION: u8 = 1;

/// The largest frame either side accepts (a page of records is far smaller).
pub(crate) const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// Parent → child.
// A frame lives only between building and encoding it: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ToChild {
    /// Run a hook. `call` numbers the call within this child's life.
    Call {
        /// The call's number.
        call: u64,
        /// What to run.
        hook: HookCall,
        /// What the call holds: scope, configuration, the clock's now.
        snapshot: Snapshot,
    },
    /// The answer to a [`ToParent::Ask`].
    Reply {
        /// The call it belongs to.
        call: u64,
        /// The request's number within the call.
        ask: u64,
        /// The answer.
        reply: HostReply,
    },
}

/// Child → parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ToParent {
    /// The plugin loaded (every check of the loader passed in the child).
    Ready(Ready),
    /// The plugin did not load; the loader's error.
    Refused {
        /// The [`crate::plugins::LoadError`]'s message.
        error: String,
    },
    /// A host service the hook needs.
    Ask {
        /// The call it belongs to.
        call: u64,
        /// The request's number within the call.
        ask: u64,
        /// The request.
        request: HostRequest,
    },
    /// The hook's result.
    Done {
        /// The call.
        call: u64,
        /// What the hook returned.
        result: HookResult,
    },
}

/// What a child reports once its plugin has loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ready {
    /// The declaration's plugin id.
    pub(crate) id: String,
    /// The declaration's version.
    pub(crate) version: String,
    /// The API version it was built against.
    pub(crate) api_version: u32,
    /// The manifest, as JSON.
    pub(crate) manifest_json: String,
    /// How the child is confined (no_new_privs, Landlock status).
    pub(crate) sandbox: String,
}

/// A frame that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The pipe failed.
    #[error("plugin runner pipe: {0}")]
    Io(#[from] io::Error),
    /// The other side speaks another protocol version.
    #[error("plugin runner frame has protocol version {found}, expected {expected}")]
    Version {
        /// The frame's version byte.
        found: u8,
        /// [`PROTOCOL_VERSION`].
        expected: u8,
    },
    /// A length of zero or above [`MAX_FRAME`].
    #[error("plugin runner frame length {length} is outside 1..={MAX_FRAME}")]
    Length {
        /// The length read.
        length: u32,
    },
    /// The payload does not decode (or encode).
    #[error("plugin runner frame does not decode: {0}")]
    Codec(#[from] postcard::Error),
}

/// Writes one frame and flushes.
pub(crate) fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let payload = postcard::to_stdvec(message)?;
    let length = u32::try_from(payload.len() + 1)
        .ok()
        .filter(|n| *n <= MAX_FRAME)
        .ok_or(FrameError::Length { length: u32::MAX })?;
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.extend_from_slice(&length.to_le_bytes());
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(&payload);
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame; `None` at a clean end of the stream (between frames).
pub(crate) fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> Result<Option<T>, FrameError> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_le_bytes(length);
    if length == 0 || length > MAX_FRAME {
        return Err(FrameError::Length { length });
    }
    let mut body = vec![0u8; length as usize];
    input.read_exact(&mut body)?;
    let (version, payload) = body.split_first().ok_or(FrameError::Length { length })?;
    if *version != PROTOCOL_VERSION {
        return Err(FrameError::Version { found: *version, expected: PROTOCOL_VERSION });
    }
    Ok(Some(postcard::from_bytes(payload)?))
}

#[cfg(test)]
mod tests {
    use jiayuan_domain::{Date, EstateId, RecordId, Timestamp};
    use jiayuan_plugin_api::{Outcome, PluginError, RecordQuery, Scope};

    use super::*;
    use crate::plugins::isolation::HookAnswer;
    use crate::plugins::test_support::{close, kpi_call, probe};

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: &T) {
        let mut wire = Vec::new();
        write_frame(&mut wire, message).expect("encodes");
        let mut input = wire.as_slice();
        assert_eq!(read_frame::<T>(&mut input).expect("decodes").as_ref(), Some(message));
        assert_eq!(read_frame::<T>(&mut input).expect("clean end"), None);
    }

    #[test]
    fn every_message_round_trips() {
        let snapshot = Snapshot {
            scope: Scope::new(Some(jiayuan_domain::Place::Estate(EstateId(3))), None, None, "r-1".into()),
            config_json: r#"{"k":1}"#.into(),
            now: Timestamp(1_764_300_000_000),
        };
        for hook in [HookCall::Create(probe("ok")), HookCall::Transition(close()), HookCall::Kpis(kpi_call())] {
            round_trip(&ToChild::Call { call: 7, hook, snapshot: snapshot.clone() });
        }
        let day = Date::from_ymd(2026, 11, 30).expect("valid date");
        round_trip(&ToChild::Reply { call: 7, ask: 2, reply: HostReply::Day(day) });
        round_trip(&ToChild::Reply { call: 7, ask: 3, reply: HostReply::Count(Err(PluginError::Host("x".into()))) });
        round_trip(&ToParent::Ask {
            call: 7,
            ask: 1,
            request: HostRequest::RecordQuery(RecordQuery::of("dog").limit(5)),
        });
        round_trip(&ToParent::Ask { call: 7, ask: 4, request: HostRequest::RecordGet(RecordId(9)) });
        round_trip(&ToParent::Done { call: 7, result: Ok(HookAnswer::Outcome(Outcome::accept())) });
        round_trip(&ToParent::Done { call: 8, result: Err(PluginError::Panicked("boom".into())) });
        round_trip(&ToParent::Ready(Ready {
            id: "fixture".into(),
            version: "0.1.0".into(),
            api_version: 2,
            manifest_json: "{}".into(),
            sandbox: "no_new_privs".into(),
        }));
    }

    #[test]
    fn another_protocol_version_or_a_bad_length_is_refused() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &ToParent::Refused { error: "e".into() }).expect("encodes");
        wire[4] = PROTOCOL_VERSION + 1;
        let err = read_frame::<ToParent>(&mut wire.as_slice()).expect_err("another version");
        assert!(
            matches!(err, FrameError::Version { found, expected } if found == PROTOCOL_VERSION + 1 && expected == PROTOCOL_VERSION)
        );
        let huge = (MAX_FRAME + 1).to_le_bytes();
        let err = read_frame::<ToParent>(&mut huge.as_slice()).expect_err("too long");
        assert!(matches!(err, FrameError::Length { .. }), "{err:?}");
        // A frame cut short is an error, not a clean end.
        let mut cut = Vec::new();
        write_frame(&mut cut, &ToParent::Refused { error: "e".into() }).expect("encodes");
        cut.truncate(cut.len() - 1);
        assert!(read_frame::<ToParent>(&mut cut.as_slice()).is_err());
    }
}
