//! Publishing: byte-identical outputs, kill -9 at any moment, concurrent runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// The tables a retail run with segmentation and `publish_views = ["kpi_monthly_retention"]` publishes.
const TABLES: &[&str] = RETAIL_TABLES;
const DATE: &str = "2025-12-31";

fn job(engine: &str) -> JobDir {
    JobDir::retail(&format!("{engine}\n{}", segmentation_to("out")))
}

/// The tests' segmentation and `[output]` with this root.
fn segmentation_to(root: &str) -> String {
    format!(
        "{}\n[output]\nroot = \"{root}\"\npublish_views = [\"kpi_monthly_retention\"]\n",
        retail_segmentation("{ min = 2, max = 6 }")
    )
}

/// Every table's data file for `DATE`, in table order.
fn snapshot(root: &Path) -> Vec<Vec<u8>> {
    TABLES
        .iter()
        .map(|t| std::fs::read(partition(root, t).join("part-00000.parquet")).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect()
}

fn partition(root: &Path, table: &str) -> PathBuf {
    root.join(table).join(format!("run_date={DATE}"))
}

#[test]
fn same_input_gives_byte_identical_tables_whatever_the_partition_count() {
    let one = job("[engine]\ntarget_partitions = 1\n");
    let four = job("[engine]\ntarget_partitions = 4\nbatch_size = 1000\n");
    segvalue_ok(&["run", &one.job(), "--run-date", DATE]);
    segvalue_ok(&["run", &four.job(), "--run-date", DATE]);
    let (a, b) = (snapshot(&one.out()), snapshot(&four.out()));
    for (i, t) in TABLES.iter().enumerate() {
        assert!(a[i] == b[i], "{t} differs between 1 and 4 partitions");
    }
}

/// Two inputs that differ in every table, published to one output root: the shared test
/// dataset ("A") and another seed's ("B"). `refs` holds each input's table bytes from a lone
/// run on a root of its own.
struct OldAndNew {
    jobs: [JobDir; 2],
    root: tempfile::TempDir,
    refs: [Vec<Vec<u8>>; 2],
    /// Wall seconds of a lone run.
    seconds: f64,
}

const INPUTS: [&str; 2] = ["A", "B"];

impl OldAndNew {
    fn new() -> OldAndNew {
        let other = tempfile::Builder::new().prefix("segvalue-data-b-").tempdir().unwrap().keep();
        segvalue_ok(&["generate", "--out", other.to_str().unwrap(), "--customers", "1500", "--seed", "12"]);
        let root = tempfile::Builder::new().prefix("segvalue-shared-").tempdir().unwrap();
        let shared = segmentation_to(&root.path().display().to_string());
        let jobs = [JobDir::retail(&shared), JobDir::retail_at(&other.display().to_string(), &shared)];
        let mut refs: [Vec<Vec<u8>>; 2] = Default::default();
        let mut seconds = 0.0f64;
        for (i, data) in [dataset().to_path_buf(), other].iter().enumerate() {
            let alone = JobDir::retail_at(&data.display().to_string(), &segmentation_to("out"));
            let t = std::time::Instant::now();
            segvalue_ok(&["run", &alone.job(), "--run-date", DATE]);
            seconds = seconds.max(t.elapsed().as_secs_f64());
            refs[i] = snapshot(&alone.out());
        }
        for (t, (a, b)) in TABLES.iter().zip(refs[0].iter().zip(&refs[1])) {
            assert!(a != b, "{t}: both inputs give the same bytes, so old and new cannot be told apart");
        }
        OldAndNew { jobs, root, refs, seconds }
    }

    /// Starts a run of input `i` on the shared root, its JSON log in `log`.
    fn spawn(&self, i: usize, log: &Path) -> std::process::Child {
        self.spawn_with(i, log, None)
    }

    /// [`OldAndNew::spawn`] with `SEGVALUE_FAILPOINTS` set to `failpoints`.
    fn spawn_with(&self, i: usize, log: &Path, failpoints: Option<&str>) -> std::process::Child {
        let mut c = Command::new(BIN);
        if let Some(f) = failpoints {
            c.env("SEGVALUE_FAILPOINTS", f);
        }
        c.args(["--log-format", "json", "run", &self.jobs[i].job(), "--run-date", DATE])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }

    /// The input whose bytes `table`'s published file holds; panics on anything else.
    fn input_of(&self, k: usize, bytes: &[u8], when: &str) -> usize {
        (0..2).find(|&i| self.refs[i][k] == bytes).unwrap_or_else(|| panic!("{}: neither input's bytes {when}", TABLES[k]))
    }

    /// Checks every partition and the manifest against the runs started so far (run id →
    /// input), and `segvalue runs` against them; returns which inputs the tables hold and
    /// whether a marker was missing.
    fn check(&self, run_inputs: &std::collections::HashMap<String, usize>, when: &str) -> (Vec<usize>, bool) {
        let root = self.root.path();
        let mut held = Vec::new();
        let mut markers = Vec::new();
        for (k, t) in TABLES.iter().enumerate() {
            let dir = partition(root, t);
            let data = std::fs::read(dir.join("part-00000.parquet")).unwrap_or_else(|e| panic!("{t}: {e} {when}"));
            let input = self.input_of(k, &data, when);
            held.push(input);
            let files = files_in(&dir);
            assert!(files.iter().all(|f| f == "part-00000.parquet" || f == "_SUCCESS"), "{t}: {files:?} {when}");
            let marker = std::fs::read_to_string(dir.join("_SUCCESS")).ok();
            let id = marker.as_deref().and_then(|m| m.lines().find_map(|l| l.strip_prefix("run_id="))).map(str::to_string);
            if let Some(id) = &id {
                let by = run_inputs.get(id).unwrap_or_else(|| panic!("{t}: _SUCCESS names run {id}, which no run logged {when}"));
                assert_eq!(*by, input, "{t}: _SUCCESS of run {id} (input {}) beside input {}'s data {when}", INPUTS[*by], INPUTS[input]);
            }
            markers.push(id);
        }
        let m = manifest(root, DATE);
        let m_id = m["run_id"].as_str().unwrap().to_string();
        let m_input = run_inputs[&m_id];
        let complete = markers.iter().all(|id| id.as_deref() == Some(m_id.as_str()));
        let out = segvalue_ok(&["runs", &root.display().to_string()]);
        let line: Vec<&str> = out.lines().nth(1).unwrap().split('\t').collect();
        assert_eq!(line[1], if complete { "complete" } else { "incomplete" }, "`segvalue runs` says {line:?}, markers {markers:?}, manifest {m_id} {when}");
        assert_eq!(line[4], m_id, "{when}");
        if complete {
            assert!(held.iter().all(|&i| i == m_input), "complete, yet tables hold {held:?} and the manifest is input {m_input} {when}");
            let mut listed: Vec<&str> = m["tables"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
            listed.sort();
            let mut want = TABLES.to_vec();
            want.sort();
            assert_eq!(listed, want, "{when}");
        }
        (held, markers.iter().any(Option::is_none))
    }
}


/// Runs a date with input A, then reruns it 50 times alternating inputs B and A, killing each
/// rerun with SIGKILL: half at a random moment of the whole run, half during its commit
/// (right after its first data file lands, then a random 0–20 ms later). After every kill each
/// partition holds wholly one input's bytes, its `_SUCCESS` (when present) names a run of that
/// same input, and `segvalue runs` calls the date complete exactly when every marker names the
/// manifest's run. The seed is printed; `SEGVALUE_KILL_SEED` replays one. Then the same
/// checks after a crash (a fail point) after each step of publishing in turn.
#[test]
fn kill_9_at_50_random_moments_leaves_each_partition_wholly_old_or_new() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("SEGVALUE_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("SEGVALUE_KILL_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let s = OldAndNew::new();
    let logs = tempfile::tempdir().unwrap();
    let mut run_inputs = std::collections::HashMap::new();
    let first = logs.path().join("first.log");
    assert!(s.spawn(0, &first).wait().unwrap().success());
    run_inputs.insert(logged_run_id(&first).unwrap(), 0);
    s.check(&run_inputs, "after the first run");

    let data_files: Vec<PathBuf> = TABLES.iter().map(|t| partition(s.root.path(), t).join("part-00000.parquet")).collect();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let (mut finished, mut mixed, mut unmarked, mut in_commit) = (0, 0, 0, 0);
    for n in 0..50 {
        let input = 1 - n % 2;
        let log = logs.path().join(format!("kill-{n}.log"));
        let before: Vec<u64> = data_files.iter().map(|p| inode(p)).collect();
        let mut child = s.spawn(input, &log);
        let at_commit = rng.gen_bool(0.5);
        let when = if at_commit {
            // Polls until the commit has moved its first data file (or the run ended).
            loop {
                if child.try_wait().unwrap().is_some() || data_files.iter().zip(&before).any(|(p, &i)| inode(p) != i) {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            let us = rng.gen_range(0..20_000u64);
            std::thread::sleep(Duration::from_micros(us));
            format!("in the commit +{us} µs (kill {n}, input {}, seed {seed})", INPUTS[input])
        } else {
            let ms = rng.gen_range(0..(s.seconds * 1100.0) as u64);
            std::thread::sleep(Duration::from_millis(ms));
            format!("at {ms} ms (kill {n}, input {}, seed {seed})", INPUTS[input])
        };
        let exited = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        if let Some(id) = logged_run_id(&log) {
            run_inputs.insert(id, input);
        }
        let (held, missing) = s.check(&run_inputs, &when);
        finished += usize::from(exited && status.success());
        mixed += usize::from(held.iter().any(|&i| i != held[0]));
        unmarked += usize::from(missing);
        in_commit += usize::from(at_commit);
    }
    eprintln!("50 kills ({in_commit} aimed at the commit): {finished} runs had finished, {mixed} left old and new tables side by side, {unmarked} a partition without _SUCCESS");

    // Then a crash after each step of publishing in turn (each object written, moved or
    // deleted), which timed kills cannot aim at, until a run gets past the last step.
    let mut step = 0;
    loop {
        let input = 1 - step % 2;
        let log = logs.path().join(format!("step-{step}.log"));
        let failpoint = if step == 0 { "publish-step=return".to_string() } else { format!("publish-step={step}*off->return") };
        let status = s.spawn_with(input, &log, Some(&failpoint)).wait().unwrap();
        if let Some(id) = logged_run_id(&log) {
            run_inputs.insert(id, input);
        }
        s.check(&run_inputs, &format!("after a crash at publish step {step} (input {})", INPUTS[input]));
        if status.success() {
            break;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(6), "step {step}: the run did not end at its fail point: {}", std::fs::read_to_string(&log).unwrap());
        step += 1;
        assert!(step < 1000, "publishing never ended");
    }
    assert!(step > 3 * TABLES.len(), "only {step} publish steps for {} tables", TABLES.len());
    eprintln!("crashed after each of the {step} steps of publishing");
    // A rerun after all that publishes the input's tables whole, and the date is complete.
    let last = logs.path().join("last.log");
    assert!(s.spawn(1, &last).wait().unwrap().success());
    assert!(!std::fs::read_to_string(&last).unwrap().contains("waiting for another run"), "a killed run's lock held up the rerun");
    run_inputs.insert(logged_run_id(&last).unwrap(), 1);
    let (held, missing) = s.check(&run_inputs, "after the last run");
    assert!(held.iter().all(|&i| i == 1) && !missing, "{held:?}");
    assert_eq!(snapshot(s.root.path()), s.refs[1]);
}

/// Writes the date's commit lock `lock-<n>` as held (or released) by a run on another machine
/// with a live lease, as `segvalue` writes its own.
fn foreign_lock(out: &Path, n: u64, released: bool) {
    let dir = out.join(format!("_manifests/run_date={DATE}/_commit"));
    std::fs::create_dir_all(&dir).unwrap();
    let holder = serde_json::json!({
        "run_id": "elsewhere-run", "host": "another-machine", "pid": 1, "process_start": 0,
        "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339(), "released": released,
    });
    std::fs::write(dir.join(format!("lock-{n:020}")), holder.to_string()).unwrap();
}

/// Two runs of one date with different inputs at once, made to reach the commit together: a
/// lock held by another machine stops both until both wait, then is released, so both go for
/// the lock at the same instant; fail points make both try to create the same lock object and
/// slow every step of their commits, so without the lock the commits would interleave. The commit lock lets one commit after the
/// other, so the date ends wholly one input's (tables, markers and manifest) and complete.
#[test]
fn concurrent_runs_with_different_inputs_leave_the_date_wholly_one_run() {
    let s = OldAndNew::new();
    let logs = tempfile::tempdir().unwrap();
    let lock_dir = s.root.path().join(format!("_manifests/run_date={DATE}/_commit"));
    for round in 0..3 {
        let next = files_in_or_none(&lock_dir).iter().filter_map(|f| f.strip_prefix("lock-")?.parse::<u64>().ok()).max().map_or(0, |n| n + 1);
        foreign_lock(s.root.path(), next, false);
        let paths = [logs.path().join(format!("a{round}.log")), logs.path().join(format!("b{round}.log"))];
        // Each run pauses between listing the locks and creating its own, longer than the
        // runs' polls are apart, so both try to create the same lock; and every step of
        // publishing is slowed, so without the lock both commits would interleave.
        let slow = Some("lock-create=sleep(500);publish-step=sleep(20)");
        let mut children = [s.spawn_with(0, &paths[0], slow), s.spawn_with(1, &paths[1], slow)];
        let started = std::time::Instant::now();
        while !paths.iter().all(|p| std::fs::read_to_string(p).unwrap_or_default().contains("waiting for another run")) {
            for (i, c) in children.iter_mut().enumerate() {
                assert!(c.try_wait().unwrap().is_none(), "round {round}: a run ended without waiting for the held lock: {}", std::fs::read_to_string(&paths[i]).unwrap());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "round {round}: the runs never both waited");
            std::thread::sleep(Duration::from_millis(20));
        }
        foreign_lock(s.root.path(), next, true);
        let mut run_inputs = std::collections::HashMap::new();
        for (i, c) in children.into_iter().enumerate() {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", std::fs::read_to_string(&paths[i]).unwrap());
            run_inputs.insert(logged_run_id(&paths[i]).unwrap(), i);
        }
        let (held, missing) = s.check(&run_inputs, &format!("round {round}"));
        let m_input = run_inputs[manifest(s.root.path(), DATE)["run_id"].as_str().unwrap()];
        assert!(!missing && held.iter().all(|&i| i == m_input), "round {round}: tables hold {held:?}, manifest input {m_input}");
    }
}

/// The names in `dir`, or none when it does not exist.
fn files_in_or_none(dir: &Path) -> Vec<String> {
    if dir.exists() { files_in(dir) } else { Vec::new() }
}

/// A run that finds its date's commit lock held (here by a run on another machine, with a live
/// lease) waits without touching the date, and commits once the lock is released.
#[test]
fn a_run_waits_for_the_commit_lock_of_its_date() {
    let j = job("");
    let out = j.out();
    let lock_dir = out.join(format!("_manifests/run_date={DATE}/_commit"));
    foreign_lock(&out, 3, false);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run", &j.job(), "--run-date", DATE])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let waiting = std::time::Instant::now();
    while !std::fs::read_to_string(log.path()).unwrap().contains("waiting for another run") {
        assert!(child.try_wait().unwrap().is_none(), "the run ended without waiting: {}", std::fs::read_to_string(log.path()).unwrap());
        assert!(waiting.elapsed() < Duration::from_secs(120), "never reached the commit");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(child.try_wait().unwrap().is_none(), "the run committed under another run's lock");
    assert!(!partition(&out, TABLES[0]).exists(), "a table was published under another run's lock");
    foreign_lock(&out, 3, true);
    assert!(child.wait().unwrap().success());
    assert_eq!(files_in(&lock_dir), ["lock-00000000000000000004"], "the run's own lock replaces the released one");
    assert_eq!(segvalue_ok(&["runs", &out.display().to_string()]).lines().nth(1).unwrap().split('\t').nth(1), Some("complete"));
}

#[test]
fn runs_lists_each_date_and_flags_an_incomplete_one() {
    let j = JobDir::retail(&format!("{}\n[output]\nroot = \"out\"\n", retail_segmentation("3")));
    for date in ["2025-12-30", "2025-12-31"] {
        segvalue_ok(&["run", &j.job(), "--run-date", date]);
    }
    let out = j.out();
    let root = out.display().to_string();
    let lines = |stdout: String| stdout.lines().skip(1).map(|l| l.split('\t').map(String::from).collect::<Vec<_>>()).collect::<Vec<_>>();
    let runs = lines(segvalue_ok(&["runs", &root]));
    assert_eq!(runs.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect::<Vec<_>>(), [("2025-12-30", "complete"), ("2025-12-31", "complete")]);
    // Rows agree with DuckDB counting every table of the date.
    for r in &runs {
        let tables: Vec<String> = files_in(&out).into_iter().filter(|t| !t.starts_with('_')).collect();
        assert_eq!(r[2], tables.len().to_string());
        let counted: i64 = tables
            .iter()
            .map(|t| duckdb(&format!("SELECT count(*) FROM read_parquet('{root}/{t}/run_date={}/*.parquet')", r[0]))[0][0].as_i64().unwrap())
            .sum();
        assert_eq!(r[3], counted.to_string(), "{r:?}");
    }
    // A table whose commit marker is missing makes its date incomplete, and says which.
    std::fs::remove_file(out.join("customer_segments/run_date=2025-12-30/_SUCCESS")).unwrap();
    let runs = lines(segvalue_ok(&["runs", &root]));
    assert_eq!((runs[0][1].as_str(), runs[0][5].as_str()), ("incomplete", "table 'customer_segments' has no _SUCCESS"));
    assert_eq!(runs[1][1], "complete");
}

/// A tmpfs mounted for one test (the test suite runs as root, as CI does), unmounted after.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::Builder::new().prefix("segvalue-tmpfs-").tempdir().unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"]).arg(dir.path()).output().unwrap();
        assert!(out.status.success(), "mounting a small tmpfs needs root (CI runs the tests as root): {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(dir)
    }

    /// Resizes the file system to its used bytes plus `free`.
    fn leave_free(&self, free: u64) {
        let df = Command::new("df").args(["-B1", "--output=used"]).arg(self.0.path()).output().unwrap();
        let used: u64 = String::from_utf8_lossy(&df.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
        let out = Command::new("mount").args(["-o", &format!("remount,size={}", used + free)]).arg(self.0.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Runs `job` for `date` on `disk` with 0, 32, 64, … KiB free until a run fits. Every run that
/// fails must do so with exit 1 and one line naming the lack of space, then pass `unchanged`;
/// returns the failures while staging and while setting space aside for the commit.
fn sweep_free_space(disk: &Tmpfs, job: &JobDir, date: &str, unchanged: impl Fn(&str)) -> (usize, usize) {
    let (mut at_staging, mut at_reserve) = (0, 0);
    for step in 0.. {
        let free = step * 32 * 1024;
        assert!(free < 4 << 20, "no run fitted in 4 MiB");
        disk.leave_free(free);
        let (code, _, stderr) = segvalue(&["run", &job.job(), "--run-date", date]);
        if code == 0 {
            eprintln!("{date}: {step} runs failed ({at_staging} while staging, {at_reserve} setting space aside for the commit); the one with {} KiB free fitted", free / 1024);
            return (at_staging, at_reserve);
        }
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
        let when = format!("{date}, {} KiB free", free / 1024);
        assert!(code == 1 && errors.len() == 1 && !stderr.contains("panicked"), "{when}: exit {code}:\n{stderr}");
        assert!(errors[0].contains("No space left on device"), "{when}: {}", errors[0]);
        at_reserve += usize::from(errors[0].contains("no room to commit"));
        at_staging += usize::from(errors[0].contains("table '"));
        unchanged(&format!("{when}: {}", errors[0]));
    }
    unreachable!()
}

/// A full disk (a small tmpfs) never leaves a date half-published. A date published with
/// input A is rerun with input B, and a new date is run, each on 0, 32, 64, … KiB free until
/// the run fits: a rerun that fails leaves the date wholly A's (tables, markers, manifest;
/// `segvalue runs` says complete), a new date's failed run leaves nothing of that date, and
/// neither leaves staging behind; the runs that fit publish B's tables byte for byte. The
/// failures come both from staging and from the space set aside for the commit.
#[test]
fn a_full_disk_fails_a_run_whole_and_a_rerun_with_room_publishes_it() {
    let disk = Tmpfs::mount(8 << 20);
    let root = disk.0.path().join("out");
    let root_s = root.display().to_string();
    let other = tempfile::tempdir().unwrap();
    segvalue_ok(&["generate", "--out", other.path().to_str().unwrap(), "--customers", "1500", "--seed", "12"]);
    let jobs = [JobDir::retail(&segmentation_to(&root_s)), JobDir::retail_at(&other.path().display().to_string(), &segmentation_to(&root_s))];
    let alone = JobDir::retail_at(&other.path().display().to_string(), &segmentation_to("out"));
    segvalue_ok(&["run", &alone.job(), "--run-date", DATE]);
    let want_b = snapshot(&alone.out());
    let no_staging = |when: &str| assert!(files_under(&root.join("_staging")).is_empty(), "{when}: staging left behind");
    let status = |date: &str| segvalue_ok(&["runs", &root_s]).lines().find(|l| l.starts_with(date)).map(|l| l.split('\t').nth(1).unwrap().to_string());

    segvalue_ok(&["run", &jobs[0].job(), "--run-date", DATE]);
    let (a, a_manifest) = (snapshot(&root), manifest(&root, DATE));
    assert!(a != want_b);
    let rerun = sweep_free_space(&disk, &jobs[1], DATE, |when| {
        assert!(snapshot(&root) == a, "{when}: a failed rerun changed the published tables");
        assert_eq!(manifest(&root, DATE), a_manifest, "{when}");
        assert_eq!(status(DATE).as_deref(), Some("complete"), "{when}");
        no_staging(when);
    });
    assert!(snapshot(&root) == want_b, "the rerun that fitted did not publish input B's tables");
    assert_eq!(status(DATE).as_deref(), Some("complete"));

    // A date not published before: its commit adds files rather than replacing them.
    let new_date = "2025-12-30";
    let first = sweep_free_space(&disk, &jobs[1], new_date, |when| {
        let left: Vec<PathBuf> = files_under(&root).into_iter().filter(|p| p.to_string_lossy().contains(&format!("run_date={new_date}"))).collect();
        assert!(left.is_empty(), "{when}: a failed run left {left:?}");
        assert!(status(new_date).is_none(), "{when}");
        no_staging(when);
    });
    assert_eq!(status(new_date).as_deref(), Some("complete"));
    for (name, (staging, reserve)) in [("rerun", rerun), ("new date", first)] {
        assert!(staging > 0 && reserve > 0, "{name}: the sweep missed a stage: {staging} staging, {reserve} reserve failures");
    }
}
