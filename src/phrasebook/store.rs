//! The only code that writes phrasebook files.
//!
//! Invariant: a crash at any point leaves either the old or the new file, never a torn one.
//! A write goes to a temp file in the same directory, is fsynced, renamed over the target,
//! and the directory is fsynced so the rename itself is durable. Only then does the caller
//! acknowledge the edit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Fault injection for the crash test's negative control: with
/// `HUASHU_FAULT_NONATOMIC_WRITES=1` in the environment, writes go in place, in small
/// fsynced chunks with a pause after each (a slow disk) — exactly what this module exists
/// to prevent — so the test can show it would catch a torn file. Never set it elsewhere.
fn nonatomic_fault() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("HUASHU_FAULT_NONATOMIC_WRITES").is_some_and(|v| v == "1"))
}

fn write_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    for chunk in bytes.chunks(256) {
        f.write_all(chunk)?;
        f.sync_data()?;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if nonatomic_fault() {
        return write_in_place(path, bytes);
    }
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        NEXT_TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes `path` durably (the directory entry is fsynced).
pub fn remove_durable(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    sync_dir(&parent(path))
}

/// Creates `dir` (and parents) and fsyncs it and its parent so the new entry survives a crash.
pub fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    sync_dir(dir)?;
    sync_dir(&parent(dir))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Name of the journal a multi-file write leaves in the shop directory until it is done.
pub const JOURNAL: &str = ".journal.toml";

#[derive(serde::Serialize, serde::Deserialize)]
struct Journal {
    file: Vec<JournalFile>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct JournalFile {
    /// Relative to the shop directory.
    path: String,
    /// The new content; absent: the file is removed.
    content: Option<String>,
}

/// Writes several files of one shop as one change: the new contents go into a journal
/// (atomically, durably) first, then each file is written atomically, then the journal is
/// removed. A crash leaves either no journal (nothing or everything applied) or a complete
/// journal that [`recover`] applies at the next start. Paths must be inside `shop_dir`; a
/// `None` content removes the file.
pub fn write_many(shop_dir: &Path, files: &[(PathBuf, Option<String>)]) -> std::io::Result<()> {
    let mut journal = Journal {
        file: Vec::with_capacity(files.len()),
    };
    for (path, content) in files {
        let rel = path.strip_prefix(shop_dir).map_err(|_| {
            std::io::Error::other(format!(
                "{} is outside {}",
                path.display(),
                shop_dir.display()
            ))
        })?;
        journal.file.push(JournalFile {
            path: rel.to_string_lossy().into_owned(),
            content: content.clone(),
        });
    }
    let text = toml::to_string(&journal).map_err(std::io::Error::other)?;
    let jpath = shop_dir.join(JOURNAL);
    write_atomic(&jpath, text.as_bytes())?;
    apply_journal(shop_dir, &journal)?;
    remove_durable(&jpath)
}

fn apply_journal(shop_dir: &Path, journal: &Journal) -> std::io::Result<()> {
    for f in &journal.file {
        let rel = Path::new(&f.path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(std::io::Error::other(format!(
                "journal path `{}` leaves the shop",
                f.path
            )));
        }
        let target = shop_dir.join(rel);
        match &f.content {
            Some(content) => {
                if let Some(parent) = target.parent() {
                    create_dir_durable(parent)?;
                }
                write_atomic(&target, content.as_bytes())?;
            }
            None if target.exists() => remove_durable(&target)?,
            None => {}
        }
    }
    Ok(())
}

/// Finishes a multi-file write a crash interrupted, and removes leftover temp files.
/// Returns whether a journal was applied.
pub fn recover(shop_dir: &Path) -> std::io::Result<bool> {
    let jpath = shop_dir.join(JOURNAL);
    let applied = match std::fs::read_to_string(&jpath) {
        Ok(text) => match toml::from_str::<Journal>(&text) {
            Ok(journal) => {
                apply_journal(shop_dir, &journal)?;
                remove_durable(&jpath)?;
                true
            }
            // A journal is written atomically, so an unreadable one was never complete:
            // nothing of it was applied.
            Err(_) => {
                remove_durable(&jpath)?;
                false
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    for dir in [shop_dir.to_path_buf(), shop_dir.join("intents")] {
        if dir.is_dir() {
            sweep_temp_files(&dir)?;
        }
    }
    Ok(applied)
}

/// Deletes temp files a crash left behind (`.<name>.tmp-*`); returns how many.
pub fn sweep_temp_files(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") && entry.path().is_file() {
            std::fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write_atomic(&path, b"old").unwrap();
        // Renaming a file over a directory fails: the old content must survive untouched.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"").unwrap();
        assert!(write_atomic(&target, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(
            sweep_temp_files(dir.path()).unwrap(),
            0,
            "temp file cleaned up on failure"
        );
    }

    #[test]
    fn many_files_in_one_change_and_recovery_rolls_forward() {
        let dir = tempfile::tempdir().unwrap();
        let shop = dir.path();
        let files = vec![
            (shop.join("intents/a.toml"), Some("a = 1\n".to_string())),
            (
                shop.join("shop.toml"),
                Some("x = \"\\\"q\\\"\"\n".to_string()),
            ),
        ];
        write_many(shop, &files).unwrap();
        assert_eq!(
            std::fs::read_to_string(shop.join("intents/a.toml")).unwrap(),
            "a = 1\n"
        );
        assert!(!shop.join(JOURNAL).exists());
        // A crash after the journal was written: recovery applies it.
        let journal = Journal {
            file: vec![JournalFile {
                path: "intents/b.toml".into(),
                content: Some("b = 2\n".into()),
            }],
        };
        std::fs::write(shop.join(JOURNAL), toml::to_string(&journal).unwrap()).unwrap();
        assert!(recover(shop).unwrap());
        assert_eq!(
            std::fs::read_to_string(shop.join("intents/b.toml")).unwrap(),
            "b = 2\n"
        );
        assert!(!recover(shop).unwrap(), "nothing left to do");
        // A journal that escapes the shop is refused.
        let evil = Journal {
            file: vec![JournalFile {
                path: "../evil".into(),
                content: Some(String::new()),
            }],
        };
        std::fs::write(shop.join(JOURNAL), toml::to_string(&evil).unwrap()).unwrap();
        assert!(recover(shop).is_err());
        assert!(!dir.path().parent().unwrap().join("evil").exists());
        assert!(write_many(shop, &[(PathBuf::from("/tmp/elsewhere"), None)]).is_err());
        // None removes.
        write_many(shop, &[(shop.join("intents/a.toml"), None)]).unwrap();
        assert!(!shop.join("intents/a.toml").exists());
    }

    #[test]
    fn sweeps_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".a.toml.tmp-1-2"), b"x").unwrap();
        std::fs::write(dir.path().join("a.toml"), b"x").unwrap();
        assert_eq!(sweep_temp_files(dir.path()).unwrap(), 1);
        assert!(dir.path().join("a.toml").exists());
    }
}
