//! A decoded copy of a `Content-Encoding`d response body, made frame by frame as the body
//! passes (feature `decode`): gzip, deflate (zlib-wrapped, as HTTP defines it), br and zstd.
//!
//! The decoders are push decoders (compressed bytes written in, decoded bytes written out to
//! a buffer the reader drains), so nothing waits for the whole body. Input is fed in small
//! slices and the output drained after each: one slice can expand to at most its size times
//! the format's largest ratio, which keeps the memory a hostile body can make the layer hold
//! bounded (a few MiB) whatever the frame sizes are. The client's bytes are never touched.

#[cfg(feature = "decode")]
pub(crate) use self::imp::Decoder;
#[cfg(not(feature = "decode"))]
pub(crate) use self::off::Decoder;

/// Without the feature: no coding can be decoded (the record says so).
#[cfg(not(feature = "decode"))]
mod off {
    use std::io;

    use bytes::Bytes;

    /// Never made: [`Decoder::new`] knows no coding.
    #[derive(Debug)]
    pub(crate) enum Decoder {}

    impl Decoder {
        pub(crate) fn new(_encoding: &str) -> Option<Decoder> {
            None
        }

        pub(crate) fn feed(&mut self, _: &[u8], _: &mut impl FnMut(Bytes)) -> io::Result<()> {
            match *self {}
        }

        pub(crate) fn finish(&mut self, _: &mut impl FnMut(Bytes)) -> io::Result<()> {
            match *self {}
        }
    }
}

#[cfg(feature = "decode")]
mod imp {
    use std::io::{self, Write};

    use bytes::Bytes;

    /// Compressed bytes fed to the decoder at a time (see the module docs).
    const SLICE: usize = 64;

    /// The decoded bytes of the current slice.
    #[derive(Debug, Default)]
    struct Out(Vec<u8>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    enum Codec {
        Gzip(flate2::write::GzDecoder<Out>),
        Deflate(flate2::write::ZlibDecoder<Out>),
        Brotli(Box<brotli_decompressor::DecompressorWriter<Out>>),
        Zstd(zstd::stream::write::Decoder<'static, Out>),
    }

    /// An incremental decoder for one response body.
    pub(crate) struct Decoder {
        codec: Codec,
    }

    impl std::fmt::Debug for Decoder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let name = match self.codec {
                Codec::Gzip(_) => "gzip",
                Codec::Deflate(_) => "deflate",
                Codec::Brotli(_) => "br",
                Codec::Zstd(_) => "zstd",
            };
            f.debug_struct("Decoder").field("codec", &name).finish()
        }
    }

    impl Decoder {
        /// A decoder for a `Content-Encoding` value (one coding, any case); `None` for a coding
        /// it cannot decode (`compress`, a list of codings …).
        pub(crate) fn new(encoding: &str) -> Option<Decoder> {
            let codec = match encoding.trim().to_ascii_lowercase().as_str() {
                "gzip" | "x-gzip" => Codec::Gzip(flate2::write::GzDecoder::new(Out::default())),
                "deflate" => Codec::Deflate(flate2::write::ZlibDecoder::new(Out::default())),
                "br" => Codec::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(
                    Out::default(),
                    4096,
                ))),
                "zstd" => Codec::Zstd(zstd::stream::write::Decoder::new(Out::default()).ok()?),
                _ => return None,
            };
            Some(Decoder { codec })
        }

        /// Decodes `input`, handing each piece of decoded bytes to `out` as it is made.
        pub(crate) fn feed(&mut self, input: &[u8], out: &mut impl FnMut(Bytes)) -> io::Result<()> {
            for slice in input.chunks(SLICE) {
                match &mut self.codec {
                    Codec::Gzip(d) => d.write_all(slice)?,
                    Codec::Deflate(d) => d.write_all(slice)?,
                    Codec::Brotli(d) => d.write_all(slice)?,
                    Codec::Zstd(d) => d.write_all(slice)?,
                }
                self.drain(out);
            }
            Ok(())
        }

        /// The body ended: decodes what the decoder still holds and checks the stream is whole
        /// (gzip's trailer); an error says it was cut or corrupt.
        pub(crate) fn finish(&mut self, out: &mut impl FnMut(Bytes)) -> io::Result<()> {
            let result = match &mut self.codec {
                Codec::Gzip(d) => d.try_finish(),
                Codec::Deflate(d) => d.try_finish(),
                Codec::Brotli(d) => d.flush(),
                Codec::Zstd(d) => d.flush(),
            };
            self.drain(out);
            result
        }

        fn drain(&mut self, out: &mut impl FnMut(Bytes)) {
            let buf = match &mut self.codec {
                Codec::Gzip(d) => d.get_mut(),
                Codec::Deflate(d) => d.get_mut(),
                Codec::Brotli(d) => d.get_mut(),
                Codec::Zstd(d) => d.get_mut(),
            };
            if !buf.0.is_empty() {
                out(Bytes::from(std::mem::take(&mut buf.0)));
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn decode_all(encoding: &str, body: &[u8], frame: usize) -> io::Result<Vec<u8>> {
            let mut d = Decoder::new(encoding).expect("supported");
            let mut got = Vec::new();
            let mut out = |b: Bytes| got.extend_from_slice(&b);
            for f in body.chunks(frame.max(1)) {
                d.feed(f, &mut out)?;
            }
            d.finish(&mut out)?;
            Ok(got)
        }

        fn gzip(data: &[u8]) -> Vec<u8> {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }

        #[test]
        fn gzip_and_deflate_decode_under_any_framing() {
            let data = b"data: {\"usage\":{\"prompt_tokens\":3}}\n\n".repeat(50);
            let gz = gzip(&data);
            for frame in [1, 7, 61, gz.len()] {
                assert_eq!(decode_all("GZIP", &gz, frame).unwrap(), data);
            }
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&data).unwrap();
            assert_eq!(
                decode_all("deflate", &z.finish().unwrap(), 13).unwrap(),
                data
            );
        }

        #[test]
        fn a_cut_or_corrupt_body_is_an_error_never_garbage() {
            let gz = gzip(b"hello world, hello world");
            assert!(
                decode_all("gzip", &gz[..gz.len() - 4], 5).is_err(),
                "cut trailer"
            );
            let mut bad = gz.clone();
            bad[12] ^= 0xff;
            assert!(decode_all("gzip", &bad, 5).is_err(), "corrupt");
            assert!(decode_all("br", b"not brotli at all", 4).is_err());
            assert!(decode_all("zstd", b"not zstd at all!", 4).is_err());
        }

        #[test]
        fn unknown_codings_are_refused() {
            assert!(Decoder::new("compress").is_none());
            assert!(Decoder::new("gzip, br").is_none());
            assert!(Decoder::new("identity").is_none());
        }

        #[test]
        fn a_bomb_never_makes_one_piece_larger_than_a_slice_can_expand_to() {
            let zeros = vec![0u8; 8 << 20];
            let gz = gzip(&zeros);
            let mut d = Decoder::new("gzip").unwrap();
            let mut largest = 0;
            let mut total = 0;
            let mut out = |b: Bytes| {
                largest = largest.max(b.len());
                total += b.len();
            };
            d.feed(&gz, &mut out).unwrap();
            d.finish(&mut out).unwrap();
            assert_eq!(total, zeros.len());
            // Deflate expands at most ~1032:1, plus what flate2 holds in its own buffer (32 KiB
            // output chunks): a piece stays ~100 KiB, not the 8 MiB of the whole bomb.
            assert!(largest <= SLICE * 1100 + (64 << 10), "{largest}");
        }
    }
}
