//! Reading a key set or a revocation list from a file: capped in size, so that a wrong path (a
//! log, a device) cannot make the verifier read without end.

use std::path::Path;

use keymint_jwks::Jwks;

use crate::{BuildError, UpdateError};

/// The largest key set file read; far above any real set.
const MAX_JWKS_FILE: u64 = 1024 * 1024;

pub(crate) fn read_jwks(path: &Path) -> Result<Jwks, BuildError> {
    let bytes = read_capped(path, MAX_JWKS_FILE).map_err(|source| BuildError::ReadKeys {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Jwks::from_json(&bytes)?)
}

pub(crate) fn read_list(path: &Path, max: usize) -> Result<String, UpdateError> {
    let read_err = |source| UpdateError::Read {
        path: path.display().to_string(),
        source,
    };
    let bytes = read_capped(path, max as u64).map_err(read_err)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8",
        ))
    })?;
    // Editors and `echo` add a final newline; it is not part of the JWS.
    Ok(text.trim_end().to_owned())
}

fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(out)
}
