//! Files only their owner may read: the master key, the TLS key. Apart
//! from start-up, so the TLS listener and start-up both use it without
//! reaching into each other.

use std::path::Path;

use crate::error::ServerError;

/// A new file only its owner may read (0600); fails if it exists.
pub(crate) fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), ServerError> {
    use std::io::Write;
    let mut file = create_private(path).map_err(ServerError::io(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(ServerError::io(format!("writing {}", path.display())))?;
    // The file's name is durable only once its directory is: a key must
    // not vanish in a power cut after what it sealed was committed.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(ServerError::io(format!("syncing {}", dir.display())))?;
    }
    Ok(())
}
