//! `pi-mcp osv update`: downloads the OSV project's per-ecosystem archives
//! (`<base>/<Ecosystem>/all.zip`) and unpacks them into the local database directory as
//! `<dir>/<Ecosystem>/<ID>.json`, the layout [`crate::guard::osv::OsvDb`] loads. Each ecosystem
//! is unpacked beside the old copy and swapped in only when complete, so a failed download
//! leaves the previous database in place; one ecosystem's failure does not stop the others.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::guard::osv::{Ecosystem, MAX_RECORD_BYTES};

/// Where the OSV project publishes its archives.
pub const DEFAULT_BASE_URL: &str = "https://osv-vulnerabilities.storage.googleapis.com";
/// Largest archive downloaded.
pub const MAX_ARCHIVE_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Most bytes unpacked from one archive (a guard against zip bombs).
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// Most records unpacked from one archive.
pub const MAX_RECORDS: usize = 2_000_000;
/// How long connecting, and then each read, may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
pub const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// What `osv update` does.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    pub base_url: String,
    pub ecosystems: Vec<Ecosystem>,
    pub dir: PathBuf,
}

/// One ecosystem brought up to date.
#[derive(Debug, Clone)]
pub struct Updated {
    pub url: String,
    pub records: usize,
    pub archive_bytes: u64,
}

/// Why one ecosystem could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    #[error("cannot download {url}: {why} (is the network reachable?)")]
    Download { url: String, why: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} is not a readable zip archive: {source}")]
    Zip {
        url: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{url} holds no OSV records (*.json)")]
    Empty { url: String },
    #[error("unpacking {url} stopped: {why}")]
    Unpack { url: String, why: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Updates every ecosystem in `opts`, in order; the result per ecosystem.
pub async fn update(opts: &UpdateOptions) -> Vec<(Ecosystem, Result<Updated, UpdateError>)> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .user_agent(concat!("pi-mcp/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut out = Vec::new();
    for eco in &opts.ecosystems {
        let result = match &client {
            Ok(c) => update_one(c, &opts.base_url, *eco, &opts.dir).await,
            Err(e) => Err(UpdateError::Client(e.to_string())),
        };
        out.push((*eco, result));
    }
    out
}

async fn update_one(
    client: &reqwest::Client,
    base: &str,
    eco: Ecosystem,
    dir: &Path,
) -> Result<Updated, UpdateError> {
    let url = format!("{}/{}/all.zip", base.trim_end_matches('/'), eco.as_str());
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let archive = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let download = |e: reqwest::Error| UpdateError::Download {
        url: url.clone(),
        why: causes(&e.without_url()),
    };
    let mut response = client.get(&url).send().await.map_err(download)?;
    if !response.status().is_success() {
        return Err(UpdateError::Status {
            url,
            status: response.status().as_u16(),
        });
    }
    let mut file = archive.as_file();
    let mut bytes: u64 = 0;
    while let Some(chunk) = response.chunk().await.map_err(download)? {
        bytes += chunk.len() as u64;
        if bytes > MAX_ARCHIVE_BYTES {
            return Err(UpdateError::TooLarge {
                url,
                limit: MAX_ARCHIVE_BYTES,
            });
        }
        file.write_all(&chunk).map_err(io(archive.path()))?;
    }
    file.flush().map_err(io(archive.path()))?;
    let (path, target, shown) = (archive.path().to_path_buf(), dir.to_path_buf(), url.clone());
    let records = tokio::task::spawn_blocking(move || unpack(&path, &target, eco, &shown))
        .await
        .map_err(|e| UpdateError::Unpack {
            url: url.clone(),
            why: e.to_string(),
        })??;
    Ok(Updated {
        url,
        records,
        archive_bytes: bytes,
    })
}

/// An error with its causes: `error sending request: client error (Connect): dns error: ...`.
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// Unpacks the `*.json` records of `archive` into `<dir>/<eco>/`, replacing what was there.
/// Only plain file names are written (no directory parts); oversized records are skipped.
fn unpack(archive: &Path, dir: &Path, eco: Ecosystem, url: &str) -> Result<usize, UpdateError> {
    let zip_err = |source| UpdateError::Zip {
        url: url.to_string(),
        source,
    };
    let mut zip =
        zip::ZipArchive::new(File::open(archive).map_err(io(archive))?).map_err(zip_err)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}-", eco.as_str()))
        .tempdir_in(dir)
        .map_err(io(dir))?;
    let (mut records, mut total) = (0usize, 0u64);
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        if !entry.is_file() || entry.size() > MAX_RECORD_BYTES {
            continue;
        }
        // the archives are flat: a name with a directory part (`../x`, `/x`, `a/x`) is skipped
        let Ok(name) = entry.name().map(|n| n.to_string()) else {
            continue;
        };
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain || name.starts_with('.') || !name.ends_with(".json") {
            continue;
        }
        if records >= MAX_RECORDS {
            return Err(UpdateError::Unpack {
                url: url.to_string(),
                why: format!("more than {MAX_RECORDS} records"),
            });
        }
        let path = staging.path().join(&name);
        let mut out = File::create(&path).map_err(io(&path))?;
        let copied = std::io::copy(&mut (&mut entry).take(MAX_RECORD_BYTES + 1), &mut out)
            .map_err(io(&path))?;
        if copied > MAX_RECORD_BYTES {
            drop(out);
            std::fs::remove_file(&path).map_err(io(&path))?;
            continue;
        }
        total += copied;
        if total > MAX_UNPACKED_BYTES {
            return Err(UpdateError::Unpack {
                url: url.to_string(),
                why: format!("more than {MAX_UNPACKED_BYTES} bytes unpacked"),
            });
        }
        records += 1;
    }
    if records == 0 {
        return Err(UpdateError::Empty {
            url: url.to_string(),
        });
    }
    let target = dir.join(eco.as_str());
    let old = dir.join(format!(".{}.old", eco.as_str()));
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    if target.exists() {
        std::fs::rename(&target, &old).map_err(io(&target))?;
    }
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &target) {
        let _ = std::fs::remove_dir_all(&staged);
        if old.exists() {
            let _ = std::fs::rename(&old, &target); // put the previous copy back
        }
        return Err(io(&target)(e));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(records)
}
