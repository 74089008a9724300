//! HTTP/2 written by hand, to do what no conforming client does: open streams beyond the
//! maximum the server advertised, and never grant a window to read an answer. It reads
//! back only frame types and stream ids, never a header block.

use std::collections::HashSet;

use tokio::{
    io::{AsyncRead, AsyncReadExt},
    sync::watch,
};

/// What a client sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// The error code of a stream refused before any of it was processed.
pub const REFUSED_STREAM: u32 = 0x7;
/// The error code of a peer told it is generating excessive load.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8], into: &mut Vec<u8>) {
    let length = u32::try_from(payload.len()).unwrap();
    into.extend_from_slice(&length.to_be_bytes()[1..]);
    into.extend_from_slice(&[kind, flags]);
    into.extend_from_slice(&stream.to_be_bytes());
    into.extend_from_slice(payload);
}

/// The client's SETTINGS: streams get `initial_window` bytes of answer before the client
/// grants more, which this client never does.
pub fn settings(initial_window: u32) -> Vec<u8> {
    let mut payload = SETTINGS_INITIAL_WINDOW_SIZE.to_be_bytes().to_vec();
    payload.extend_from_slice(&initial_window.to_be_bytes());
    let mut bytes = Vec::new();
    frame(SETTINGS, 0, 0, &payload, &mut bytes);
    bytes
}

/// Appends an HPACK string literal, without Huffman coding.
fn string(value: &str, into: &mut Vec<u8>) {
    assert!(
        value.len() < 0x7f,
        "a longer string needs a multi-byte length"
    );
    into.push(u8::try_from(value.len()).unwrap());
    into.extend_from_slice(value.as_bytes());
}

/// The header block of a gRPC call of `path`. Every field is indexed from the static
/// table or a literal that is not indexed, so the same block serves every stream.
fn header_block(authority: &str, path: &str) -> Vec<u8> {
    // `:method: POST` and `:scheme: http`, static entries 3 and 6.
    let mut block = vec![0x83, 0x86];
    // Literals without indexing, named by static entries 4 (`:path`), 1 (`:authority`)
    // and 31 (`content-type`, 15 + 16 in a four-bit prefix).
    block.push(0x04);
    string(path, &mut block);
    block.push(0x01);
    string(authority, &mut block);
    block.extend_from_slice(&[0x0f, 0x10]);
    string("application/grpc", &mut block);
    block.push(0x00);
    string("te", &mut block);
    string("trailers", &mut block);
    block
}

/// Calls of one gRPC method, each a HEADERS and a DATA frame ending the stream.
pub struct Calls {
    header_block: Vec<u8>,
    /// The request message with its gRPC prefix (uncompressed, and its length).
    message: Vec<u8>,
}

impl Calls {
    /// Calls of `path` on the server at `authority`, each with request `message`.
    pub fn new(authority: &str, path: &str, message: &[u8]) -> Self {
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(message);
        Self {
            header_block: header_block(authority, path),
            message: framed,
        }
    }

    /// The calls on client streams `first` to `last` (counted from 1).
    pub fn streams(&self, first: u32, last: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        for n in first..=last {
            // Client streams have odd ids.
            let id = 2 * n - 1;
            frame(HEADERS, END_HEADERS, id, &self.header_block, &mut bytes);
            frame(DATA, END_STREAM, id, &self.message, &mut bytes);
        }
        bytes
    }
}

/// What the server said on a connection, by frame type.
#[derive(Debug, Default, Clone)]
pub struct Said {
    /// The most concurrent streams it advertised in its SETTINGS.
    pub max_concurrent_streams: Option<u32>,
    /// Streams it answered (sent headers on).
    pub answered: usize,
    /// Streams it reset with REFUSED_STREAM.
    pub refused: usize,
    /// Streams it reset for another reason.
    pub reset_otherwise: usize,
    /// The error code of its GOAWAY, if it sent one.
    pub go_away: Option<u32>,
    /// Whether it closed the connection (end of file, or a reset).
    pub closed: bool,
}

/// Reads the server's frames until it closes the connection, publishing what it said
/// after each.
pub async fn listen(mut from: impl AsyncRead + Unpin, said: watch::Sender<Said>) {
    let mut header = [0u8; 9];
    let mut answered = HashSet::new();
    loop {
        if from.read_exact(&mut header).await.is_err() {
            said.send_modify(|said| said.closed = true);
            return;
        }
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = header;
        let length = u32::from_be_bytes([0, l0, l1, l2]);
        let stream = u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff;
        let mut payload = vec![0; usize::try_from(length).unwrap()];
        if from.read_exact(&mut payload).await.is_err() {
            said.send_modify(|said| said.closed = true);
            return;
        }
        said.send_modify(|said| match kind {
            HEADERS if stream != 0 => {
                answered.insert(stream);
                said.answered = answered.len();
            }
            RST_STREAM => {
                let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
                if code == REFUSED_STREAM {
                    said.refused += 1;
                } else {
                    said.reset_otherwise += 1;
                }
            }
            SETTINGS if flags & ACK == 0 => {
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                        let value = u32::from_be_bytes(setting[2..6].try_into().unwrap());
                        said.max_concurrent_streams = Some(value);
                    }
                }
            }
            GOAWAY => {
                said.go_away = Some(u32::from_be_bytes(payload[4..8].try_into().unwrap()));
            }
            _ => {}
        });
    }
}
