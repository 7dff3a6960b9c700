//! The file tools over stdio, driven by rmcp's client: `read` paging, limits, images and
//! errors; `edit` uniqueness, formats and atomicity; and paths that try to leave the workspace.

mod support;

use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use support::{Workspace, call, spawn_stdio, spawn_stdio_env, text_of};

fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[tokio::test]
async fn read_pages_large_files_and_explains_bad_paths() {
    let ws = Workspace::new();
    ws.write("big.log", lines(10_000));
    ws.write("small.txt", "alpha\nbeta\ngamma\n");
    ws.write("bin.dat", [0xff_u8, 0xfe, 0x00, 0x80, b'\n']);
    std::fs::create_dir(ws.path().join("dir")).unwrap();
    // A 1x1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0A, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0,
        0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    ws.write("reports/chart.png", png);
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(&client, "read", json!({"path": "big.log"})).await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(false));
    assert!(t.starts_with("line 1\n"));
    assert!(t.contains("line 2000\n") && !t.contains("line 2001\n"));
    assert!(
        t.ends_with("[Showing lines 1-2000 of 10000. Use offset=2001 to continue.]"),
        "{}",
        &t[t.len() - 120..]
    );

    let r = call(
        &client,
        "read",
        json!({"path": "big.log", "offset": 9990, "limit": 5}),
    )
    .await;
    let t = text_of(&r);
    assert!(
        t.starts_with("line 9990\nline 9991\n")
            && t.contains("line 9994\n")
            && !t.contains("line 9995\n"),
        "{t}"
    );
    assert!(
        t.contains("[Showing lines 9990-9994 of 10000. Use offset=9995 to continue.]"),
        "{t}"
    );

    let r = call(&client, "read", json!({"path": "big.log", "offset": 9999})).await;
    assert_eq!(text_of(&r), "line 9999\nline 10000\n");

    let r = call(&client, "read", json!({"path": "small.txt", "offset": 50})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("has 3 lines"), "{}", text_of(&r));

    for (path, expect) in [
        ("dir", "is a directory"),
        ("bin.dat", "not UTF-8"),
        ("nope.txt", "does not exist"),
    ] {
        let r = call(&client, "read", json!({"path": path})).await;
        assert_eq!(r.is_error, Some(true), "{path}");
        assert!(text_of(&r).contains(expect), "{path}: {}", text_of(&r));
    }

    let r = call(&client, "read", json!({"path": "reports/chart.png"})).await;
    let image = r.content[0].as_image().expect("image content");
    assert_eq!(image.mime_type, "image/png");

    let r = call(&client, "read", json!({"path": 42})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`path`"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn edit_replaces_exactly_once_keeps_format_and_is_atomic() {
    let ws = Workspace::new();
    ws.write("app.conf", "port = 80\nhost = a\nhost = a\n");
    ws.write("win.ini", "\u{feff}[main]\r\nkey = old\r\nother = 1\r\n");
    let script = ws.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "port = 80", "new_text": "port = 8080"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("-port = 80\n+port = 8080"),
        "{}",
        text_of(&r)
    );
    assert_eq!(ws.read("app.conf"), "port = 8080\nhost = a\nhost = a\n");

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "port = 9", "new_text": "x"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("not found"), "{}", text_of(&r));

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "host = a", "new_text": "host = b"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("matches 2 places") && text_of(&r).contains("surrounding lines"),
        "{}",
        text_of(&r)
    );

    let r = call(
        &client,
        "edit",
        json!({"path": "win.ini", "old_text": "key = old\n", "new_text": "key = new\n"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(
        ws.read("win.ini"),
        "\u{feff}[main]\r\nkey = new\r\nother = 1\r\n"
    );

    // All or nothing: the second edit fails, so the first is not applied either.
    let r = call(
        &client,
        "edit",
        json!({"path": "run.sh", "edits": [{"old_text": "echo old", "new_text": "echo new"}, {"old_text": "missing", "new_text": "x"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("edits[1]"), "{}", text_of(&r));
    assert_eq!(ws.read("run.sh"), "#!/bin/sh\necho old\n");
    let r = call(
        &client,
        "edit",
        json!({"path": "run.sh", "edits": [{"old_text": "echo old", "new_text": "echo new"}, {"old_text": "#!/bin/sh", "new_text": "#!/bin/bash"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("run.sh"), "#!/bin/bash\necho new\n");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "permissions kept");

    let r = call(
        &client,
        "edit",
        json!({"path": "new/notes.md", "old_text": "", "new_text": "# Notes\n"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("new/notes.md"), "# Notes\n");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn paths_cannot_escape_the_workspace() {
    let ws = Workspace::new();
    ws.write(".env", "SECRET=1\n");
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "outside\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("link.txt")).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let outside_path = outside.path().to_str().unwrap();
    for (tool, args, expect) in [
        (
            "read",
            json!({"path": "../../etc/passwd"}),
            "outside the workspace",
        ),
        (
            "read",
            json!({"path": outside_path}),
            "outside the workspace",
        ),
        ("read", json!({"path": "link.txt"}), "outside the workspace"),
        ("read", json!({"path": ".env"}), "protected path"),
        (
            "edit",
            json!({"path": ".env", "old_text": "SECRET=1", "new_text": "SECRET=2"}),
            "protected path",
        ),
        (
            "edit",
            json!({"path": "link.txt", "old_text": "outside", "new_text": "x"}),
            "outside the workspace",
        ),
        (
            "edit",
            json!({"path": "../escape.txt", "old_text": "", "new_text": "x"}),
            "outside the workspace",
        ),
    ] {
        let r = call(&client, tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}");
        assert!(
            text_of(&r).contains(expect),
            "{tool} {args}: {}",
            text_of(&r)
        );
    }
    assert_eq!(ws.read(".env"), "SECRET=1\n");
    assert_eq!(
        std::fs::read_to_string(outside.path()).unwrap(),
        "outside\n"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tilde_is_the_servers_home_never_a_directory_named_tilde() {
    let ws = Workspace::new();
    // The server's home is the directory holding the workspace: `~/<ws>/x` is inside it.
    let home = ws.path().parent().expect("a parent").to_path_buf();
    let ws_name = ws
        .path()
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned();
    let client = spawn_stdio_env(ws.path(), &[("HOME", home.to_str().expect("UTF-8"))])
        .await
        .unwrap();
    for (tool, args, expect) in [
        (
            "edit",
            json!({"path": "~/pi-mcp-notes.txt", "old_text": "", "new_text": "x"}),
            "`~` is the server's home",
        ),
        (
            "read",
            json!({"path": "~/pi-mcp-notes.txt"}),
            "`~` is the server's home",
        ),
        (
            "edit",
            json!({"path": "~root/notes.txt", "old_text": "", "new_text": "x"}),
            "`~user` paths are not expanded",
        ),
    ] {
        let r = call(&client, tool, args.clone()).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{tool} {args}: {text}");
        assert!(text.contains(expect), "{tool} {args}: {text}");
    }
    assert!(
        !ws.path().join("~").exists(),
        "no directory named ~ in the workspace"
    );
    assert!(
        !home.join("pi-mcp-notes.txt").exists(),
        "nothing written in the home"
    );

    // Expanded, then judged like any other path: inside the workspace it works.
    let inside = format!("~/{ws_name}/notes/today.md");
    let r = call(
        &client,
        "edit",
        json!({"path": inside, "old_text": "", "new_text": "hello\n"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("notes/today.md"), "hello\n");
    let r = call(&client, "read", json!({"path": inside})).await;
    assert_eq!(text_of(&r), "hello\n");
    assert!(!ws.path().join("~").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn links_out_of_the_workspace_or_to_nothing_are_refused_and_left_alone() {
    use std::os::unix::fs::symlink;
    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    let gone = outside.path().join("gone.txt");
    symlink(
        ws.path().join("missing-target.txt"),
        ws.path().join("dangling.txt"),
    )
    .unwrap();
    symlink(&gone, ws.path().join("dangling-out.txt")).unwrap();
    symlink(outside.path(), ws.path().join("outdir")).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    for (args, link) in [
        (
            json!({"path": "dangling.txt", "old_text": "", "new_text": "x"}),
            "dangling.txt",
        ),
        (
            json!({"path": "dangling-out.txt", "old_text": "", "new_text": "x"}),
            "dangling-out.txt",
        ),
        (
            json!({"path": "outdir/new.txt", "old_text": "", "new_text": "x"}),
            "outdir",
        ),
    ] {
        let r = call(&client, "edit", args.clone()).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{args}: {text}");
        let named = format!("symbolic link `{}", ws.path().join(link).display());
        assert!(text.contains(&named), "{args}: names the link: {text}");
        assert!(text.contains("the link is left as it is"), "{text}");
    }
    let r = call(
        &client,
        "edit",
        json!({"path": "dangling.txt", "old_text": "", "new_text": "x"}),
    )
    .await;
    assert!(text_of(&r).contains("does not exist"), "{}", text_of(&r));
    let r = call(&client, "read", json!({"path": "dangling.txt"})).await;
    assert!(text_of(&r).contains("dangling link"), "{}", text_of(&r));
    // Every link is still the same link, and nothing was created behind any of them.
    for (link, target) in [
        ("dangling.txt", ws.path().join("missing-target.txt")),
        ("dangling-out.txt", gone.clone()),
        ("outdir", outside.path().to_path_buf()),
    ] {
        let p = ws.path().join(link);
        assert!(
            p.symlink_metadata().unwrap().file_type().is_symlink(),
            "{link}"
        );
        assert_eq!(std::fs::read_link(&p).unwrap(), target, "{link}");
    }
    assert!(!ws.path().join("missing-target.txt").exists());
    assert!(!gone.exists() && !outside.path().join("new.txt").exists());
    client.cancel().await.unwrap();
}

/// `read` takes a path with no link on its way without resolving it (issue 14); a path with a
/// link, or `..`, is resolved and judged by where it leads, as before.
#[tokio::test]
async fn a_link_inside_the_workspace_is_judged_by_where_it_leads() {
    use std::os::unix::fs::symlink;
    let ws = Workspace::new();
    ws.write(".env", "SECRET=1\n");
    ws.write("real/notes.txt", "notes\n");
    symlink(ws.path().join(".env"), ws.path().join("settings.txt")).unwrap();
    symlink(ws.path().join("real"), ws.path().join("alias")).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    for (path, expect) in [
        ("settings.txt", None),
        ("real/../.env", None),
        ("./real//../settings.txt", None),
        ("real/notes.txt", Some("notes")),
        ("./real//notes.txt", Some("notes")),
        ("alias/notes.txt", Some("notes")),
        ("alias/../real/notes.txt", Some("notes")),
    ] {
        let r = call(&client, "read", json!({ "path": path })).await;
        let text = text_of(&r);
        match expect {
            None => {
                assert_eq!(r.is_error, Some(true), "{path}: {text}");
                assert!(text.contains("protected path"), "{path}: {text}");
                assert!(!text.contains("SECRET"), "{path}: {text}");
            }
            Some(content) => {
                assert_eq!(r.is_error, Some(false), "{path}: {text}");
                assert!(text.contains(content), "{path}: {text}");
            }
        }
    }
    client.cancel().await.unwrap();
}

/// Exchanges `a` and `b` (a file or directory, and a symbolic link) in a loop until dropped,
/// as the agent's own `bash` could while a tool works on the path.
struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    fn start(a: std::path::PathBuf, b: std::path::PathBuf) -> Swapper {
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE).unwrap();
            }
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A link swapped in and out of a path while `read` works on it (as the agent's own `bash`
/// could) never makes it read what the link points to: every file is opened by a walk that
/// follows no link, after its canonical path was judged. Tried by effect with a secret outside
/// the workspace, through the short path (a plain name), the long one (`..` in the path) and
/// a file too large to read inline. Before, 1 in 200 to 1 in 10 of such reads returned the
/// secret.
#[tokio::test]
async fn a_link_swapped_in_while_reading_is_never_followed() {
    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::create_dir_all(ws.path().join("sub")).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    for (name, size) in [("small.txt", 10), ("large.txt", 300 * 1024)] {
        std::fs::write(&secret, "OUTSIDE-SECRET\n".repeat(size / 15 + 1)).unwrap();
        let real = ws.path().join(name);
        let link = ws.path().join(format!("{name}.link"));
        std::fs::write(&real, "inside\n".repeat(size / 7 + 1)).unwrap();
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let swapper = Swapper::start(real, link);
        let mut read = 0;
        for i in 0..300 {
            let path = if i % 2 == 0 {
                name.to_string()
            } else {
                format!("sub/../{name}")
            };
            let r = call(&client, "read", json!({ "path": path, "limit": 1 })).await;
            let text = text_of(&r);
            assert!(!text.contains("OUTSIDE-SECRET"), "{path}: {text}");
            if r.is_error != Some(true) {
                read += 1;
            }
        }
        drop(swapper);
        assert!(read > 0, "{name}: some reads found the real file");
    }
    client.cancel().await.unwrap();
}

/// `read` reads regular files: a FIFO is refused at once (it used to wait for a writer that
/// never came), and `file/` names a directory, as before.
#[tokio::test]
async fn read_refuses_what_is_not_a_regular_file() {
    let ws = Workspace::new();
    ws.write("a.txt", "text\n");
    nix::unistd::mkfifo(&ws.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let r = call(&client, "read", json!({"path": "pipe"})).await;
    assert!(
        text_of(&r).contains("not a regular file"),
        "{}",
        text_of(&r)
    );
    for path in ["a.txt/", "a.txt/."] {
        let r = call(&client, "read", json!({ "path": path })).await;
        assert_eq!(r.is_error, Some(true), "{path}: {}", text_of(&r));
    }
    client.cancel().await.unwrap();
}

/// The same for `edit`: with a directory swapped for a link to one outside the workspace and
/// back, in a loop, no edit reads the file outside (its content never shows in a diff) or
/// writes there (no file is created or changed outside). The directory is opened without
/// following links, and the temp file and the rename go to the directory that was opened.
#[tokio::test]
async fn a_directory_swapped_for_a_link_while_editing_is_never_followed() {
    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("f.txt"), "OUTSIDE-SECRET one\n").unwrap();
    ws.write("d/f.txt", "inside one\n");
    let real = ws.path().join("d");
    let link = ws.path().join("d.link");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let swapper = Swapper::start(real, link);
    let mut edited = 0;
    for i in 0..200 {
        let (path, args) = if i % 2 == 0 {
            let (old, new) = if i % 4 == 0 {
                ("one", "two")
            } else {
                ("two", "one")
            };
            (
                "d/f.txt".to_string(),
                json!({"old_text": old, "new_text": new}),
            )
        } else {
            (
                format!("d/new{i}.txt"),
                json!({"old_text": "", "new_text": "x\n"}),
            )
        };
        let mut args = args;
        args["path"] = json!(path);
        let r = call(&client, "edit", args).await;
        let text = text_of(&r);
        assert!(!text.contains("OUTSIDE-SECRET"), "{path}: {text}");
        if r.is_error != Some(true) {
            edited += 1;
        }
    }
    drop(swapper);
    client.cancel().await.unwrap();
    assert!(edited > 0, "some edits found the real directory");
    let names: Vec<String> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["f.txt"], "nothing was written outside");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("f.txt")).unwrap(),
        "OUTSIDE-SECRET one\n"
    );
}
