//! lib0 variable-length integers and a bounds-checked reader over a byte slice.
//!
//! Every read returns `DecodeError` instead of panicking, whatever the input.

use crate::error::{DecodeError, Result};

/// Mirrors the Python fallback: a varuint may take at most 9 bytes (63 bits of value).
const MAX_VARUINT_SHIFT: u32 = 60;

/// Append `value` as a lib0 varuint.
pub fn write_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value > 0x7F {
        out.push(0x80 | (value & 0x7F) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Append `value` as a lib0 varuint; the Python API accepts integers wider than 64 bits.
pub fn write_var_u128(out: &mut Vec<u8>, mut value: u128) {
    while value > 0x7F {
        out.push(0x80 | (value & 0x7F) as u8);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Append a length-prefixed byte array.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_var_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A cursor over borrowed bytes; slices it hands out live as long as the input.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_at_end(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes from `start` up to the current position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    pub fn read_u8(&mut self) -> Result<u8> {
        let byte = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| DecodeError::new("unexpected end of data"))?;
        self.pos += 1;
        Ok(byte)
    }

    pub fn read_var_u64(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| DecodeError::new("truncated varuint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift >= MAX_VARUINT_SHIFT {
                return Err(DecodeError::new("varuint longer than 53 bits"));
            }
        }
    }

    pub fn read_var_u32(&mut self) -> Result<u32> {
        let value = self.read_var_u64()?;
        u32::try_from(value).map_err(|_| DecodeError::new(format!("value {value} exceeds 32 bits")))
    }

    /// Skip a lib0 signed varint (used by the `Any` encoding).
    pub fn skip_var_i64(&mut self) -> Result<()> {
        let first = self.read_u8()?;
        let mut more = first & 0x80 != 0;
        let mut bytes = 1;
        while more {
            let byte = self.read_u8()?;
            more = byte & 0x80 != 0;
            bytes += 1;
            if bytes > 10 {
                return Err(DecodeError::new("varint longer than 64 bits"));
            }
        }
        Ok(())
    }

    pub fn read_bytes(&mut self, len: usize) -> Result<&'a [u8]> {
        if len > self.remaining() {
            return Err(DecodeError::new(format!(
                "truncated byte array: declared {len} bytes, {} present",
                self.remaining()
            )));
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.buf[start..self.pos])
    }

    pub fn read_var_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.read_var_u64()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::new("byte array too long"))?;
        self.read_bytes(len)
    }

    pub fn read_var_str(&mut self) -> Result<&'a str> {
        let bytes = self.read_var_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::new("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_var_u64(&mut out, value);
        out
    }

    #[test]
    fn round_trips_boundaries() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            (1 << 53) - 1,
            (1 << 63) - 1,
        ] {
            let bytes = encode(value);
            let mut reader = Reader::new(&bytes);
            assert_eq!(reader.read_var_u64(), Ok(value));
            assert!(reader.is_at_end());
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode(0), [0]);
        assert_eq!(encode(300), [0xAC, 0x02]);
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        assert!(Reader::new(&[0x80]).read_var_u64().is_err());
        assert!(Reader::new(&[]).read_var_u64().is_err());
        assert!(Reader::new(&[0xFF; 10]).read_var_u64().is_err());
        // non-canonical encodings are accepted, as the Python fallback does
        assert_eq!(Reader::new(&[0x80, 0x00]).read_var_u64(), Ok(0));
    }

    #[test]
    fn var_bytes_bounds() {
        assert!(Reader::new(&[5, 1, 2]).read_var_bytes().is_err());
        assert_eq!(Reader::new(&[2, 1, 2]).read_var_bytes(), Ok(&[1u8, 2][..]));
        assert!(Reader::new(&[1, 0xFF]).read_var_str().is_err());
    }
}
