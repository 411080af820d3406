//! File content inside actions: raw bytes in Rust, and in JSON either a reference to a
//! binary attachment (the server's framing), base64, or UTF-8 text.

use base64::Engine as _;
use bytes::Bytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How a payload is written into JSON when it cannot travel as a binary attachment, and
/// how a caller asks for file content back (`readFile {encoding}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Encoding {
    /// A binary attachment beside the JSON (the server's default); `{"base64": ...}`
    /// where there is no framing (plain `serde_json`).
    #[default]
    Binary,
    /// `{"base64": "aGVsbG8="}` inside the JSON.
    Base64,
    /// A JSON string; refused with `EINVAL` for content that is not UTF-8.
    Utf8,
}

/// Bytes carried by an action or its output.
///
/// In JSON a payload is one of:
/// - `"text"`: UTF-8 text;
/// - `{"base64": "aGVsbG8="}`;
/// - `{"attachment": 0}`: the first binary frame attached to the same message (see
///   PROTOCOL.md). Only the server resolves these; a payload still naming an attachment
///   when the action runs is `EINVAL`.
///
/// ```
/// use vfs_layer::actions::Payload;
///
/// let text: Payload = serde_json::from_str(r#""hello""#).unwrap();
/// let b64: Payload = serde_json::from_str(r#"{"base64": "aGVsbG8="}"#).unwrap();
/// assert_eq!(text.bytes(), b64.bytes());
/// assert_eq!(serde_json::to_string(&b64).unwrap(), r#"{"base64":"aGVsbG8="}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    content: Content,
    encoding: Encoding,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Content {
    Bytes(Bytes),
    Attachment(u32),
}

impl Payload {
    /// A payload of `bytes`, serialized as base64 unless sent as an attachment.
    pub fn new(bytes: impl Into<Bytes>) -> Payload {
        Payload {
            content: Content::Bytes(bytes.into()),
            encoding: Encoding::Binary,
        }
    }

    /// A payload that names attachment `index` of the message carrying it.
    pub fn attachment(index: u32) -> Payload {
        Payload {
            content: Content::Attachment(index),
            encoding: Encoding::Binary,
        }
    }

    /// The same bytes, serialized with `encoding`.
    pub fn with_encoding(mut self, encoding: Encoding) -> Payload {
        self.encoding = encoding;
        self
    }

    /// How it serializes.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The bytes, unless the payload still names an attachment.
    pub fn bytes(&self) -> Option<&Bytes> {
        match &self.content {
            Content::Bytes(bytes) => Some(bytes),
            Content::Attachment(_) => None,
        }
    }

    /// The attachment index it names, if it names one.
    pub fn attachment_index(&self) -> Option<u32> {
        match self.content {
            Content::Attachment(index) => Some(index),
            Content::Bytes(_) => None,
        }
    }

    /// Replaces the content with `bytes` (the server resolving an attachment).
    pub fn set_bytes(&mut self, bytes: Bytes) {
        self.content = Content::Bytes(bytes);
    }

    /// Takes the bytes out, leaving a reference to attachment `index` (the server moving
    /// content into a binary frame). `None`, and nothing changed, unless the payload holds
    /// bytes and its encoding is [`Encoding::Binary`].
    pub fn detach(&mut self, index: u32) -> Option<Bytes> {
        if self.encoding != Encoding::Binary {
            return None;
        }
        match std::mem::replace(&mut self.content, Content::Attachment(index)) {
            Content::Bytes(bytes) => Some(bytes),
            other => {
                self.content = other;
                None
            }
        }
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Payload {
        Payload::new(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload::new(bytes)
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Payload {
        Payload::new(Bytes::copy_from_slice(text.as_bytes())).with_encoding(Encoding::Utf8)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Text(String),
    Base64(Base64Wire),
    Attachment(AttachmentWire),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Base64Wire {
    base64: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachmentWire {
    attachment: u32,
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match (&self.content, self.encoding) {
            (Content::Attachment(attachment), _) => Wire::Attachment(AttachmentWire {
                attachment: *attachment,
            }),
            (Content::Bytes(bytes), Encoding::Utf8) => match std::str::from_utf8(bytes) {
                Ok(text) => Wire::Text(text.to_owned()),
                Err(_) => {
                    return Err(serde::ser::Error::custom(
                        "EINVAL: the content is not UTF-8; ask for base64 or binary",
                    ))
                }
            },
            (Content::Bytes(bytes), _) => Wire::Base64(Base64Wire {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            }),
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Payload, D::Error> {
        let wire = Wire::deserialize(deserializer).map_err(|_| {
            D::Error::custom(
                "a payload is a UTF-8 string, {\"base64\": string} or {\"attachment\": index}",
            )
        })?;
        Ok(match wire {
            Wire::Text(text) => Payload::new(text.into_bytes()).with_encoding(Encoding::Utf8),
            Wire::Base64(Base64Wire { base64 }) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(base64.as_bytes())
                    .map_err(|err| D::Error::custom(format!("bad base64: {err}")))?;
                Payload::new(bytes).with_encoding(Encoding::Base64)
            }
            Wire::Attachment(AttachmentWire { attachment }) => Payload::attachment(attachment),
        })
    }
}
