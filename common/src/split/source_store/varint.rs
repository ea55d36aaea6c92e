//! LEB128 varints and length-prefixed byte strings, the framing of source blocks.

use super::SourceStoreError;

pub(super) fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(super) fn read_varint(input: &mut &[u8]) -> Result<u64, SourceStoreError> {
    let mut value = 0u64;
    for (index, byte) in input.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *input = &input[index + 1..];
            return Ok(value);
        }
    }
    Err(SourceStoreError::Corrupt(
        "source block: truncated or overlong varint".to_string(),
    ))
}

pub(super) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(super) fn read_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], SourceStoreError> {
    let len = read_varint(input)?;
    if len > input.len() as u64 {
        return Err(SourceStoreError::Corrupt(
            "source block: a length runs past the end".to_string(),
        ));
    }
    let (bytes, rest) = input.split_at(len as usize);
    *input = rest;
    Ok(bytes)
}

pub(super) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

pub(super) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_zigzag_round_trip() {
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            let mut input = out.as_slice();
            assert_eq!(read_varint(&mut input).unwrap(), value);
            assert!(input.is_empty());
        }
        for value in [0i64, 1, -1, i64::MAX, i64::MIN, -12345] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert!(read_varint(&mut [0x80u8, 0x80].as_slice()).is_err());
        assert!(read_bytes(&mut [5u8, 1, 2].as_slice()).is_err());
    }
}
