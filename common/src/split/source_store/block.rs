//! One block of the source store: the documents' JSON text split into a skeleton (the
//! text around values: punctuation, whitespace, keys) and per-key value streams, so that
//! zstd sees the timestamps together, the trace ids together, the messages together.
//! Log lines of one service share a handful of skeletons, and values of one key look
//! alike, which compresses about a fifth better than the lines themselves.
//!
//! Any bytes round-trip exactly: the scanner reads JSON's shapes, but whatever it does
//! not recognise stays in the skeleton, and every codec is checked by decoding before it
//! is chosen.
//!
//! ```text
//! block := varint num_docs
//!          varint num_skeletons, skeleton*   skeleton := varint num_slots, (varint stream)*, (bytes)^(num_slots+1)
//!          varint skeleton_id ^ num_docs
//!          varint num_streams, stream*       stream := u8 codec, varint num_values, bytes payload
//! bytes := varint len, len bytes
//! ```

use std::ops::Range;

use rustc_hash::FxHashMap;

use super::codecs::{self, Codec};
use super::varint::{read_bytes, read_varint, write_bytes, write_varint};
use super::SourceStoreError;

/// A value is a JSON string's contents (without quotes) or a number's text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum ValueKind {
    String,
    Number,
}

/// What one line splits into: the literal text between values, and the values with the
/// key each follows.
struct ScannedLine<'a> {
    literals: Vec<&'a [u8]>,
    values: Vec<(StreamKey<'a>, &'a [u8])>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct StreamKey<'a> {
    /// The last key seen before the value, quotes included; empty before any key.
    key: &'a [u8],
    kind: ValueKind,
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// The end (exclusive, past the closing quote) of the string opening at `start`.
fn string_end(line: &[u8], start: usize) -> Option<usize> {
    let mut index = start + 1;
    while index < line.len() {
        match line[index] {
            b'\\' => index += 2,
            b'"' => return Some(index + 1),
            _ => index += 1,
        }
    }
    None
}

fn scan(line: &[u8]) -> ScannedLine<'_> {
    let mut literals = Vec::new();
    let mut values = Vec::new();
    let mut key: &[u8] = b"";
    let mut literal_start = 0;
    let mut index = 0;
    while index < line.len() {
        match line[index] {
            b'"' => {
                let Some(end) = string_end(line, index) else {
                    break;
                };
                let mut after = end;
                while after < line.len() && is_json_whitespace(line[after]) {
                    after += 1;
                }
                if after < line.len() && line[after] == b':' {
                    key = &line[index..end];
                } else {
                    // The quotes stay in the skeleton, the contents go to the stream.
                    literals.push(&line[literal_start..index + 1]);
                    let kind = ValueKind::String;
                    values.push((StreamKey { key, kind }, &line[index + 1..end - 1]));
                    literal_start = end - 1;
                }
                index = end;
            }
            b'-' | b'0'..=b'9' => {
                let mut end = index + 1;
                while end < line.len()
                    && matches!(line[end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    end += 1;
                }
                literals.push(&line[literal_start..index]);
                let kind = ValueKind::Number;
                values.push((StreamKey { key, kind }, &line[index..end]));
                literal_start = end;
                index = end;
            }
            _ => index += 1,
        }
    }
    literals.push(&line[literal_start..]);
    ScannedLine { literals, values }
}

/// Encodes `docs` (each a document's source text) into one uncompressed block.
pub(super) fn encode_block<D: AsRef<[u8]>>(docs: &[D]) -> Vec<u8> {
    // Fx: SipHash over every skeleton was a tenth of the store's indexing cost.
    let mut stream_ids: FxHashMap<StreamKey<'_>, usize> = FxHashMap::default();
    let mut streams: Vec<Vec<&[u8]>> = Vec::new();
    let mut skeleton_ids: FxHashMap<(Vec<&[u8]>, Vec<usize>), usize> = FxHashMap::default();
    let mut skeletons: Vec<(Vec<&[u8]>, Vec<usize>)> = Vec::new();
    let mut doc_skeletons = Vec::with_capacity(docs.len());
    for doc in docs {
        let scanned = scan(doc.as_ref());
        let mut slots = Vec::with_capacity(scanned.values.len());
        for (key, value) in scanned.values {
            let next_id = streams.len();
            let stream = *stream_ids.entry(key).or_insert(next_id);
            if stream == next_id {
                streams.push(Vec::new());
            }
            streams[stream].push(value);
            slots.push(stream);
        }
        let shape = (scanned.literals, slots);
        let skeleton = match skeleton_ids.get(&shape) {
            Some(id) => *id,
            None => {
                let id = skeletons.len();
                skeleton_ids.insert(shape.clone(), id);
                skeletons.push(shape);
                id
            }
        };
        doc_skeletons.push(skeleton);
    }
    let kinds: Vec<ValueKind> = {
        let mut kinds = vec![ValueKind::String; streams.len()];
        for (key, id) in &stream_ids {
            kinds[*id] = key.kind;
        }
        kinds
    };

    let mut out = Vec::new();
    write_varint(&mut out, docs.len() as u64);
    write_varint(&mut out, skeletons.len() as u64);
    for (literals, slots) in &skeletons {
        write_varint(&mut out, slots.len() as u64);
        for slot in slots {
            write_varint(&mut out, *slot as u64);
        }
        for literal in literals {
            write_bytes(&mut out, literal);
        }
    }
    for skeleton in doc_skeletons {
        write_varint(&mut out, skeleton as u64);
    }
    write_varint(&mut out, streams.len() as u64);
    for (values, kind) in streams.iter().zip(kinds) {
        let (codec, payload) = codecs::encode(values, kind == ValueKind::String);
        out.push(codec as u8);
        write_varint(&mut out, values.len() as u64);
        write_bytes(&mut out, &payload);
    }
    out
}

struct Skeleton {
    slots: Vec<usize>,
    /// Ranges of the literal text in the block's bytes.
    literals: Vec<Range<usize>>,
}

/// A decoded block, from which documents are rebuilt by their position in it. It owns its
/// bytes, so that searchers can cache it whole: decoding a block costs more than
/// rebuilding the few documents a fetch asks of it.
pub(super) struct DecodedBlock {
    bytes: Vec<u8>,
    skeletons: Vec<Skeleton>,
    doc_skeletons: Vec<u32>,
    streams: Vec<codecs::DecodedStream>,
    /// For each slot of each document, in order, the index of its value in its stream:
    /// document `d`'s are `value_indexes[doc_starts[d]..doc_starts[d + 1]]`. As many as the
    /// block has values, so bounded by its bytes.
    value_indexes: Vec<u32>,
    doc_starts: Vec<u32>,
}

fn corrupt(what: &str) -> SourceStoreError {
    SourceStoreError::Corrupt(format!("source block: {what}"))
}

/// Where `part`, a slice of `whole`, lies in it.
pub(super) fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

impl DecodedBlock {
    pub(super) fn decode(bytes: Vec<u8>) -> Result<Self, SourceStoreError> {
        let mut block = bytes.as_slice();
        let input = &mut block;
        let num_docs = read_varint(input)? as usize;
        let num_skeletons = read_varint(input)? as usize;
        let mut skeletons = Vec::with_capacity(num_skeletons.min(input.len()));
        for _ in 0..num_skeletons {
            let num_slots = read_varint(input)? as usize;
            if num_slots > input.len() {
                return Err(corrupt("more slots than bytes"));
            }
            let slots = (0..num_slots)
                .map(|_| read_varint(input).map(|slot| slot as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let literals = (0..=num_slots)
                .map(|_| read_bytes(input).map(|literal| range_in(&bytes, literal)))
                .collect::<Result<Vec<_>, _>>()?;
            skeletons.push(Skeleton { slots, literals });
        }
        if num_docs > input.len() {
            return Err(corrupt("more documents than bytes"));
        }
        let doc_skeletons = (0..num_docs)
            .map(|_| {
                let id = read_varint(input)? as usize;
                if id < skeletons.len() {
                    Ok(id as u32)
                } else {
                    Err(corrupt("unknown skeleton"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let num_streams = read_varint(input)? as usize;
        if num_streams > input.len() {
            return Err(corrupt("more streams than bytes"));
        }
        let mut streams = Vec::with_capacity(num_streams);
        for _ in 0..num_streams {
            let (&codec, rest) = input.split_first().ok_or_else(|| corrupt("truncated"))?;
            *input = rest;
            let codec = Codec::from_u8(codec).ok_or_else(|| corrupt("unknown codec"))?;
            let num_values = read_varint(input)? as usize;
            let payload = read_bytes(input)?;
            streams.push(codecs::decode(
                codec,
                num_values,
                payload,
                range_in(&bytes, payload).start,
            )?);
        }
        for skeleton in &skeletons {
            if skeleton.slots.iter().any(|slot| *slot >= streams.len()) {
                return Err(corrupt("slot of an unknown stream"));
            }
        }
        // Checked before anything is allocated for them: each value took a byte or more.
        let mut used = vec![0u64; streams.len()];
        for skeleton in &doc_skeletons {
            for slot in &skeletons[*skeleton as usize].slots {
                used[*slot] += 1;
            }
        }
        if streams
            .iter()
            .zip(&used)
            .any(|(stream, used)| stream.len() as u64 != *used)
        {
            return Err(corrupt(
                "a stream holds another number of values than its documents use",
            ));
        }
        let mut value_indexes = Vec::with_capacity(used.iter().sum::<u64>() as usize);
        let mut doc_starts = Vec::with_capacity(num_docs + 1);
        let mut next = vec![0u32; streams.len()];
        for skeleton in &doc_skeletons {
            doc_starts.push(value_indexes.len() as u32);
            for slot in &skeletons[*skeleton as usize].slots {
                value_indexes.push(next[*slot]);
                next[*slot] += 1;
            }
        }
        doc_starts.push(value_indexes.len() as u32);
        Ok(DecodedBlock {
            bytes,
            skeletons,
            doc_skeletons,
            streams,
            value_indexes,
            doc_starts,
        })
    }

    pub(super) fn num_docs(&self) -> usize {
        self.doc_skeletons.len()
    }

    /// What the block holds in memory, for the cache's bound.
    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.len()
            + (self.value_indexes.len() + self.doc_starts.len() + self.doc_skeletons.len()) * 4
            + self
                .streams
                .iter()
                .map(codecs::DecodedStream::heap_bytes)
                .sum::<usize>()
    }

    /// The document at `position`, rebuilt.
    pub(super) fn doc(&self, position: usize) -> Result<Vec<u8>, SourceStoreError> {
        let skeleton = self
            .doc_skeletons
            .get(position)
            .map(|id| &self.skeletons[*id as usize])
            .ok_or_else(|| corrupt("document position past the block's end"))?;
        let indexes = &self.value_indexes
            [self.doc_starts[position] as usize..self.doc_starts[position + 1] as usize];
        let mut doc = Vec::new();
        for ((literal, slot), index) in skeleton.literals.iter().zip(&skeleton.slots).zip(indexes) {
            doc.extend_from_slice(&self.bytes[literal.clone()]);
            self.streams[*slot].append_value(&self.bytes, *index as usize, &mut doc)?;
        }
        if let Some(last) = skeleton.literals.last() {
            doc.extend_from_slice(&self.bytes[last.clone()]);
        }
        Ok(doc)
    }

    /// The documents at `positions`, in that order.
    pub(super) fn docs(&self, positions: &[usize]) -> Result<Vec<Vec<u8>>, SourceStoreError> {
        positions
            .iter()
            .map(|position| self.doc(*position))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(docs: &[&[u8]]) {
        let block = encode_block(docs);
        let decoded = DecodedBlock::decode(block).unwrap();
        assert_eq!(decoded.num_docs(), docs.len());
        let all: Vec<usize> = (0..docs.len()).collect();
        let rebuilt = decoded.docs(&all).unwrap();
        for (doc, rebuilt) in docs.iter().zip(&rebuilt) {
            assert_eq!(
                String::from_utf8_lossy(doc),
                String::from_utf8_lossy(rebuilt)
            );
        }
    }

    #[test]
    fn log_lines_come_back_byte_for_byte() {
        round_trip(&[
            br#"{"timestamp":"2026-01-01T00:00:00.000087Z","severity_text":"INFO","tenant_id":100,"body":"Committed offset 7 for partition events-54","trace_id":"aeb53b340c1039714a69db9873af8965"}"#,
            br#"{"timestamp":"2026-01-01T00:00:00.000475Z","severity_text":"WARN","tenant_id":6,"body":"GC pause","attributes":{"http.status_code":500,"duration_ms":3175}}"#,
            br#"{ "timestamp" : "2026-01-01T00:00:19.184000Z", "n": 1668422616918, "f": -1.50e+3, "a": [1, "x", {"b": null}], "t": true }"#,
            r#"{"escaped":"a \"quoted\" \\ word\u00e9","unicode":"héllo","empty":"","zero":0}"#.as_bytes(),
        ]);
    }

    #[test]
    fn anything_that_is_not_json_round_trips_too() {
        round_trip(&[
            b"",
            b"not json at all",
            b"{\"unterminated",
            b"\x00\x01\xff binary \"",
            b"{\"k\": 12abc, \"j\": --3}",
            b"\"lonely string\"",
            b"-",
            b"{\"key\" \n:\t\"value\"}",
        ]);
    }

    #[test]
    fn only_the_asked_documents_are_rebuilt() {
        let docs: Vec<String> = (0..100)
            .map(|n| {
                format!(
                    r#"{{"n":{n},"s":"v{n}","t":"2026-01-01T00:00:{:02}Z"}}"#,
                    n % 60
                )
            })
            .collect();
        let block = encode_block(&docs);
        let decoded = DecodedBlock::decode(block).unwrap();
        let rebuilt = decoded.docs(&[3, 3, 50, 99]).unwrap();
        let expected: Vec<&[u8]> = [3, 3, 50, 99].iter().map(|n| docs[*n].as_bytes()).collect();
        assert_eq!(rebuilt, expected);
        assert!(decoded.docs(&[100]).is_err());
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let block = encode_block(&[br#"{"a":"b","c":1}"#.as_slice(); 3]);
        for len in 0..block.len() {
            if let Ok(decoded) = DecodedBlock::decode(block[..len].to_vec()) {
                let _ = decoded.docs(&[0]);
            }
        }
        let mut flipped = block.clone();
        for index in 0..flipped.len() {
            flipped[index] ^= 0xff;
            if let Ok(decoded) = DecodedBlock::decode(flipped.clone()) {
                let all: Vec<usize> = (0..decoded.num_docs()).collect();
                let _ = decoded.docs(&all);
            }
            flipped[index] ^= 0xff;
        }
    }
}
