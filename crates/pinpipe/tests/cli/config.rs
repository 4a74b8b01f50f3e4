//! `pinpipe config`, configuration layering and configuration errors.

use crate::harness::Workdir;

#[test]
fn config_shows_values_and_their_origin() {
    let w = Workdir::new();
    std::fs::write(w.path().join("pinpipe.toml"), "prefix = \"fromfile\"\ndata_dir = \"store\"\n").unwrap();
    let out = w.run_with(&["config"], &[("PINPIPE_DATA_DIR", "envdir")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("data_dir = \"envdir\"  # environment variable PINPIPE_DATA_DIR"), "{}", out.stdout);
    assert!(out.stdout.contains("prefix = \"fromfile\"  #"), "{}", out.stdout);
    assert!(out.stdout.contains("pinpipe.toml"), "{}", out.stdout);
    assert!(out.stdout.contains("embedded SQLite at sqlite://envdir/source.db"), "{}", out.stdout);
    assert!(out.stdout.contains("topic fromfile.pin, stream streaming-fromfile-pin, table fromfile_pin_table"));

    // Secrets are masked; every section is shown.
    let out =
        w.run_with(&["config"], &[("PINPIPE_API__API_KEYS", "s3cret,other"), ("PINPIPE_LOG__DEFAULT_PARTITIONS", "4")]);
    assert!(out.stdout.contains("api_keys = \"***\"  # environment variable PINPIPE_API__API_KEYS"), "{}", out.stdout);
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
    assert!(
        out.stdout.contains("default_partitions = 4  # environment variable PINPIPE_LOG__DEFAULT_PARTITIONS"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("listen = \"127.0.0.1:8082\"  # default"), "{}", out.stdout);
    assert!(out.stdout.contains("[warehouse]\n# url unset: file://"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "[batch]\ncluster_questions = \"auto\"  # default\nmemory_limit = \"1GiB\"  # default\nread_concurrency = 64  # default"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("# spill_dir unset: store/spill"), "{}", out.stdout);
    let e = w.fails(&["config"], &[("PINPIPE_LOG__DEFAULT_PARTITIONS", "0")]);
    assert!(e.contains("invalid value for `log.default_partitions`"), "{e}");
    let e = w.fails(&["config"], &[("PINPIPE_API__LISTEN", "nowhere")]);
    assert!(e.contains("invalid value for `api.listen`"), "{e}");

    // Flags beat the environment, which beats the file.
    let out = w.run_with(&["--prefix", "flag", "config"], &[("PINPIPE_PREFIX", "env")]);
    assert!(out.stdout.contains("prefix = \"flag\"  # command-line flag --prefix"), "{}", out.stdout);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_where_it_came_from() {
    let w = Workdir::new();
    std::fs::write(w.path().join("pinpipe.toml"), "[source]\nulr = \"x\"\n").unwrap();
    let e = w.fails(&["config"], &[]);
    assert!(e.contains("`source.ulr`") && e.contains("pinpipe.toml") && e.contains("unknown key `ulr`"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    std::fs::remove_file(w.path().join("pinpipe.toml")).unwrap();
    let e = w.fails(&["config"], &[("PINPIPE_SOURCE__UR", "x")]);
    assert!(e.contains("environment variable PINPIPE_SOURCE__UR"), "{e}");

    let e = w.fails(&["config"], &[("PINPIPE_PREFIX", "../etc")]);
    assert!(e.contains("invalid value for `prefix` (from environment variable PINPIPE_PREFIX)"), "{e}");

    let e = w.fails(&["source", "--source-url", "oracle://u:hunter2@db/x", "info"], &[]);
    assert!(e.contains("command-line flag --source-url") && e.contains("unsupported scheme"), "{e}");
    assert!(!e.contains("hunter2"), "password leaked: {e}");

    std::fs::write(w.path().join("broken.toml"), "[source\n").unwrap();
    let e = w.fails(&["--config", "broken.toml", "config"], &[]);
    assert!(e.contains("broken.toml: invalid TOML"), "{e}");
    let e = w.fails(&["--config", "missing.toml", "config"], &[]);
    assert!(e.contains("missing.toml does not exist"), "{e}");
}

#[test]
fn help_lists_the_working_subcommands_and_misuse_exits_2() {
    let w = Workdir::new();
    let help = w.ok(&["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "up", "source", "serve", "log", "emulate", "sink", "batch", "stream", "schedule", "runs", "cluster",
            "config", "bench", "help"
        ]
    );
    let r = w.run(&["sourc"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("a similar subcommand exists: 'source'"), "{}", r.stderr);
    let r = w.run(&["source", "generate", "--rows", "many"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid value 'many' for '--rows <N>'"), "{}", r.stderr);
}
