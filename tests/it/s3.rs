//! The default job against a real S3-compatible server (moto) on 127.0.0.1, with and without
//! a fault-injecting proxy in front of it.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A child process killed when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str], port: u16) -> Server {
    start_with(args, port, &[])
}

fn start_with(args: &[&str], port: u16, env: &[(&str, &str)]) -> Server {
    let child = Command::new(python()).args(args).envs(env.iter().copied()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{args:?} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn aws_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-never-printed".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
    ]
}

/// Runs a Python snippet with boto3/pyarrow against the server; returns stdout.
fn py(port: u16, code: &str) -> String {
    let out = Command::new(python()).args(["-c", code]).envs(aws_env(port)).output().unwrap();
    assert!(out.status.success(), "{code}\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A moto server on a free port with buckets `raw` and `marts`, the test dataset's three
/// sources uploaded under `raw/<prefix>/`; returns the server (stopped when dropped) and port.
fn moto_with_dataset(prefix: &str) -> (Server, u16) {
    let s3_port = free_port();
    let moto = start(&["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()], s3_port);
    py(
        s3_port,
        &format!(
            "import boto3\ns3 = boto3.client('s3')\nfor b in ['raw', 'marts']: s3.create_bucket(Bucket=b)\n\
             for t in ['customers', 'orders', 'sessions']:\n    s3.upload_file('{}/' + t + '/part-00000.parquet', 'raw', '{prefix}/' + t + '/part-00000.parquet')\n",
            dataset().display()
        ),
    );
    (moto, s3_port)
}

fn s3_job(storage: &str) -> JobDir {
    let extra = format!(
        "[quality.orders]\nduplicate_ids = {{ column = \"order_id\", action = \"drop\" }}\n\n{storage}\n\n{}\n\
         [output]\nroot = \"s3://marts/warehouse/\"\npublish_views = [\"kpi_monthly_retention\"]\n",
        retail_segmentation("{ min = 2, max = 5 }")
    );
    JobDir::retail_at("s3://raw/shop", &extra)
}

const TABLES: &[&str] = &["customer_features", "customer_segments", "segment_summary", "segmentation_k_selection", "kpi_monthly_retention"];

#[test]
fn default_job_reads_and_publishes_on_s3_even_through_faults() {
    let s3_port = free_port();
    let _moto = start(&["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()], s3_port);
    let data = dataset();
    py(
        s3_port,
        &format!(
            "import boto3\ns3 = boto3.client('s3')\nfor b in ['raw', 'marts']: s3.create_bucket(Bucket=b)\n\
             for t in ['customers', 'orders', 'sessions']:\n    s3.upload_file('{}/' + t + '/part-00000.parquet', 'raw', 'shop/' + t + '/part-00000.parquet')\n",
            data.display()
        ),
    );

    // A clean run straight against the server.
    let clean = s3_job("");
    let env = aws_env(s3_port);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let root_clean = "s3://marts/clean/";
    let (code, stdout, stderr) = segvalue_env(&["run", &clean.job(), "--run-date", "2025-12-31", "--output-root", root_clean], &env_ref);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("customer_segments\t"), "{stdout}");
    assert!(!stderr.contains("testing-secret-never-printed"));

    // The same job through a proxy that fails every 4th request with 503, drops every 7th
    // connection, carries out every 9th upstream and then drops its answer (a PUT, copy or
    // delete that happened though the client never heard), and cuts every 11th GET's body in
    // half: retries with backoff must carry it to the same result.
    let proxy_port = free_port();
    let proxy = Path::new(ROOT).join("tests/support/fault_proxy.py");
    let _proxy = start(&[proxy.to_str().unwrap(), &proxy_port.to_string(), &s3_port.to_string(), "4", "7", "9", "11"], proxy_port);
    let faulty = s3_job("[storage]\nmax_retries = 10\ninitial_backoff_ms = 10\nmax_backoff_ms = 200\n");
    let env = aws_env(proxy_port);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _, stderr) = segvalue_env(&["run", &faulty.job(), "--run-date", "2025-12-31", "--output-root", "s3://marts/faulty/"], &env_ref);
    assert_eq!(code, 0, "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&py(
        proxy_port,
        &format!("import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{proxy_port}/__proxy_stats').read().decode())"),
    ))
    .unwrap();
    assert!(stats["failed"].as_i64().unwrap() >= 5 && stats["dropped"].as_i64().unwrap() >= 3, "{stats}");
    assert!(stats["acted_then_dropped"].as_i64().unwrap() >= 3 && stats["truncated"].as_i64().unwrap() >= 3, "{stats}");
    eprintln!("faults injected: {stats}");

    // Outputs are byte-identical, complete, and readable by an outside reader (pyarrow's S3).
    let check = py(
        s3_port,
        &format!(
            r#"
import boto3, pyarrow.dataset as ds, pyarrow.fs as fs
s3 = boto3.client('s3')
get = lambda k: s3.get_object(Bucket='marts', Key=k)['Body'].read()
tables = {TABLES:?}
for t in tables:
    p = t + '/run_date=2025-12-31/'
    assert get('clean/' + p + 'part-00000.parquet') == get('faulty/' + p + 'part-00000.parquet'), t
    get('faulty/' + p + '_SUCCESS')
left = [o['Key'] for o in s3.list_objects_v2(Bucket='marts').get('Contents', []) if '_staging' in o['Key']]
assert not left, left
s3fs = fs.S3FileSystem(endpoint_override='127.0.0.1:{s3_port}', scheme='http', access_key='testing', secret_key='x', region='us-east-1')
d = ds.dataset('marts/faulty/customer_segments', filesystem=s3fs, format='parquet', partitioning='hive')
t = d.to_table()
print(t.num_rows, sorted(set(str(v) for v in t.column('run_date').to_pylist())))
"#
        ),
    );
    let local = duckdb(&format!(
        "SELECT count(DISTINCT customer_id) FROM read_parquet('{}/orders/*.parquet')",
        data.display()
    ))[0][0]
        .as_i64()
        .unwrap();
    assert_eq!(check.trim(), format!("{local} ['2025-12-31']"));
}

#[test]
fn a_missing_bucket_names_the_source() {
    let s3_port = free_port();
    let _moto = start(&["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()], s3_port);
    let j = s3_job("[storage]\nmax_retries = 1\n");
    let env = aws_env(s3_port);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, _, stderr) = segvalue_env(&["run", &j.job(), "--run-date", "2025-12-31"], &env_ref);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("source 'customers' (s3://raw/shop/customers/)"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("testing-secret-never-printed"), "{stderr}");
}

/// Preflight against a moto server that checks credentials and IAM policies: a missing
/// bucket, a missing prefix, a user who may read the sources but not write the outputs, and a
/// wrong secret each stop `run` and `check` within seconds (before any source is scanned)
/// with exit 1 and one plain line naming the URL and the cause; nothing is staged. With the
/// right user, `check` passes and leaves nothing behind.
#[test]
fn preflight_stops_bad_locations_in_seconds_with_a_plain_cause() {
    let s3_port = free_port();
    let moto = ["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()];
    let _moto = start_with(&moto, s3_port, &[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]);
    let setup = Path::new(ROOT).join("tests/support/moto_iam.py");
    let out = Command::new(python())
        .args([setup.to_str().unwrap(), dataset().to_str().unwrap()])
        .envs(aws_env(s3_port))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = |user: &str, i: usize| keys[user][i].as_str().unwrap().to_string();
    let good = s3_job("[storage]\nmax_retries = 1\n");
    let no_prefix = JobDir::retail_at("s3://raw/missing", "[storage]\nmax_retries = 1\n[output]\nroot = \"s3://marts/warehouse/\"\n");
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let run_as = |user: &str, secret: &str, args: &[&str]| {
        let env = [
            ("AWS_ACCESS_KEY_ID", key(user, 0)),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
        ];
        let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = Instant::now();
        let got = segvalue_env(args, &env_ref);
        (got, started.elapsed())
    };
    let (admin, reader) = (key("admin", 1), key("reader", 1));
    let cases: [(&str, &str, &JobDir, Option<&str>, &str); 4] = [
        ("admin", &admin, &good, Some("s3://no-such-bucket/x/"), "s3://no-such-bucket/x: no such bucket (PUT http://127.0.0.1:"),
        ("admin", &admin, &no_prefix, None, "source 'customers' (s3://raw/missing/customers/): no .parquet file there"),
        ("reader", &reader, &good, None, "s3://marts/warehouse: access denied (PUT http://127.0.0.1:"),
        ("reader", "not-the-secret", &good, None, "source 'customers' (s3://raw/shop/customers/): invalid key or signature (GET http://127.0.0.1:"),
    ];
    for (user, secret, job, root, expected) in cases {
        for command in ["run", "check"] {
            let path = job.job();
            let mut args = vec![command, path.as_str(), "--run-date", "2025-12-31"];
            if let Some(r) = root {
                args.extend(["--output-root", r]);
            }
            let ((code, _, stderr), took) = run_as(user, secret, &args);
            assert_eq!(code, 1, "{args:?}\n{stderr}");
            let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
            assert_eq!(errors.len(), 1, "{stderr}");
            assert!(errors[0].contains(expected), "{args:?}: expected {expected}\n{}", errors[0]);
            assert!(!stderr.contains("<?xml") && !stderr.contains(secret) && !stderr.contains("panicked"), "{stderr}");
            assert!(!stderr.contains("stage done stage=\"plan\""), "{args:?} got past the preflight:\n{stderr}");
            assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
        }
    }
    let path = good.job();
    let ((code, stdout, stderr), _) = run_as("admin", &admin, &["check", &path, "--run-date", "2025-12-31"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("output\twritable\ts3://marts/warehouse/"), "{stdout}");
    assert_eq!(stdout.matches("\t1 files\ts3://raw/shop/").count(), 3, "{stdout}");
    let listing = Command::new(python())
        .args(["-c", "import boto3; print([o['Key'] for o in boto3.client('s3').list_objects_v2(Bucket='marts').get('Contents', [])])"])
        .envs(aws_env(s3_port))
        .env("AWS_ACCESS_KEY_ID", key("admin", 0))
        .env("AWS_SECRET_ACCESS_KEY", &admin)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), "[]", "{}", String::from_utf8_lossy(&listing.stderr));
}

/// Canary secrets in the AWS secret and the pseudonym key, debug logging everywhere: neither
/// canary may appear in anything segvalue writes or prints.
#[test]
fn secrets_never_appear_in_logs_outputs_or_errors() {
    const AWS_CANARY: &str = "CANARYawsSECRET0123456789";
    const KEY_CANARY: &str = "CANARYpseudonymKEY98765";
    let (_moto, s3_port) = moto_with_dataset("shop");
    let j = s3_job("[privacy]\npseudonymize_ids = true\n");
    let mut env = aws_env(s3_port);
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", AWS_CANARY.into()));
    env.push(("SEGVALUE_PSEUDONYM_KEY", KEY_CANARY.into()));
    env.push(("RUST_LOG", "debug".into()));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut printed = String::new();
    // A good run, a run that fails on a missing bucket, and a validate, all at debug level.
    for args in [
        vec!["-vv", "run", &j.job(), "--run-date", "2025-12-31"],
        vec!["-vv", "run", &j.job(), "--run-date", "2025-12-31", "--output-root", "s3://no-such-bucket/x/"],
        vec!["-vv", "--log-format", "json", "validate", &j.job()],
    ] {
        let (_, stdout, stderr) = segvalue_env(&args, &env_ref);
        printed.push_str(&stdout);
        printed.push_str(&stderr);
    }
    assert!(printed.contains("customer_segments"), "the good run did not run:\n{printed}");
    assert!(printed.contains("DEBUG"), "debug logging was not on");
    let written = py(
        s3_port,
        "import boto3\ns3 = boto3.client('s3')\nfor o in s3.list_objects_v2(Bucket='marts')['Contents']:\n    \
         print(o['Key']); print(s3.get_object(Bucket='marts', Key=o['Key'])['Body'].read().decode('latin-1'))",
    );
    assert!(written.contains("manifest.json"), "nothing was published");
    for canary in [AWS_CANARY, KEY_CANARY] {
        assert!(!printed.contains(canary), "{canary} printed");
        assert!(!written.contains(canary), "{canary} written");
    }
}

/// What one output root holds for 2025-12-31, read from the S3 server: per table (in
/// `RETAIL_TABLES` order) its partition's file names, the SHA-256 of its data file and its
/// `_SUCCESS` run id; the manifest's run id and its commit seconds.
fn s3_state(port: u16, prefix: &str) -> serde_json::Value {
    let code = format!(
        r#"
import boto3, hashlib, json
s3 = boto3.client('s3')
out = {{'tables': []}}
for t in {RETAIL_TABLES:?}:
    p = '{prefix}' + t + '/run_date=2025-12-31/'
    keys = [o['Key'][len(p):] for o in s3.list_objects_v2(Bucket='marts', Prefix=p).get('Contents', [])]
    get = lambda k: s3.get_object(Bucket='marts', Key=p + k)['Body'].read()
    data = hashlib.sha256(get('part-00000.parquet')).hexdigest() if 'part-00000.parquet' in keys else None
    marker = next((l[7:] for l in get('_SUCCESS').decode().splitlines() if l.startswith('run_id=')), None) if '_SUCCESS' in keys else None
    out['tables'].append({{'files': keys, 'data': data, 'run_id': marker}})
m = json.loads(s3.get_object(Bucket='marts', Key='{prefix}_manifests/run_date=2025-12-31/manifest.json')['Body'].read())
out['run_id'] = m['run_id']
out['commit_seconds'] = next(s['seconds'] for s in m['stages'] if s['stage'] == 'commit')
out['staging'] = s3.list_objects_v2(Bucket='marts', Prefix='{prefix}_staging/').get('KeyCount', 0)
print(json.dumps(out))
"#
    );
    serde_json::from_str(&py(port, &code)).unwrap()
}

/// kill -9 during commits to S3: a date published with input A is rerun 12 times alternating
/// inputs B and A (another generated dataset), each run killed a random 0–150 % of a lone
/// commit's duration after its commit began. After every kill each partition holds wholly one
/// input's data file, its `_SUCCESS` (when present) names a run of that same input, and
/// `segvalue runs` calls the date complete exactly when every marker names the manifest's run;
/// a last rerun publishes its input's tables whole.
#[test]
fn kill_9_during_s3_commits_leaves_each_partition_wholly_old_or_new() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("SEGVALUE_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("SEGVALUE_KILL_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let s3_port = free_port();
    let _moto = start(&["-m", "moto.server", "-H", "127.0.0.1", "-p", &s3_port.to_string()], s3_port);
    let other = tempfile::tempdir().unwrap();
    segvalue_ok(&["generate", "--out", other.path().to_str().unwrap(), "--customers", "1500", "--seed", "12"]);
    py(
        s3_port,
        &format!(
            "import boto3\ns3 = boto3.client('s3')\nfor b in ['raw', 'marts']: s3.create_bucket(Bucket=b)\n\
             for name, d in [('a', '{}'), ('b', '{}')]:\n    for t in ['customers', 'orders', 'sessions']:\n        \
             s3.upload_file(d + '/' + t + '/part-00000.parquet', 'raw', name + '/' + t + '/part-00000.parquet')\n",
            dataset().display(),
            other.path().display()
        ),
    );
    let env = aws_env(s3_port);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let extra = format!("{}\n[output]\nroot = \"s3://marts/shared/\"\npublish_views = [\"kpi_monthly_retention\"]\n", retail_segmentation("{ min = 2, max = 6 }"));
    let jobs = [JobDir::retail_at("s3://raw/a", &extra), JobDir::retail_at("s3://raw/b", &extra)];
    let mut refs: Vec<Vec<String>> = Vec::new();
    let mut commit_seconds = 0.0f64;
    for (i, j) in jobs.iter().enumerate() {
        let prefix = format!("ref-{i}/");
        let (code, _, stderr) = segvalue_env(&["run", &j.job(), "--run-date", "2025-12-31", "--output-root", &format!("s3://marts/{prefix}")], &env_ref);
        assert_eq!(code, 0, "{stderr}");
        let state = s3_state(s3_port, &prefix);
        commit_seconds = commit_seconds.max(state["commit_seconds"].as_f64().unwrap());
        refs.push(state["tables"].as_array().unwrap().iter().map(|t| t["data"].as_str().unwrap().to_string()).collect());
    }
    assert!(refs[0].iter().zip(&refs[1]).all(|(a, b)| a != b), "both inputs give the same bytes");

    let logs = tempfile::tempdir().unwrap();
    let spawn = |i: usize, log: &Path| {
        Command::new(BIN)
            .args(["--log-format", "json", "run", &jobs[i].job(), "--run-date", "2025-12-31"])
            .envs(env_ref.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    };
    let mut run_inputs = std::collections::HashMap::new();
    let check = |run_inputs: &std::collections::HashMap<String, usize>, when: &str| -> (Vec<usize>, bool) {
        let state = s3_state(s3_port, "shared/");
        let mut held = Vec::new();
        let mut markers = Vec::new();
        for (k, t) in state["tables"].as_array().unwrap().iter().enumerate() {
            let name = RETAIL_TABLES[k];
            let data = t["data"].as_str().unwrap_or_else(|| panic!("{name}: no data file {when}"));
            let input = (0..2).find(|&i| refs[i][k] == data).unwrap_or_else(|| panic!("{name}: neither input's bytes {when}"));
            held.push(input);
            let files: Vec<&str> = t["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
            assert!(files.iter().all(|f| *f == "part-00000.parquet" || *f == "_SUCCESS"), "{name}: {files:?} {when}");
            let id = t["run_id"].as_str().map(str::to_string);
            if let Some(id) = &id {
                let by = run_inputs.get(id).unwrap_or_else(|| panic!("{name}: _SUCCESS names run {id}, which no run logged {when}"));
                assert_eq!(*by, input, "{name}: _SUCCESS of run {id} beside the other input's data {when}");
            }
            markers.push(id);
        }
        let m_id = state["run_id"].as_str().unwrap();
        let complete = markers.iter().all(|id| id.as_deref() == Some(m_id));
        let (code, out, stderr) = segvalue_env(&["runs", "s3://marts/shared/"], &env_ref);
        assert_eq!(code, 0, "{stderr}");
        let line: Vec<&str> = out.lines().nth(1).unwrap().split('\t').collect();
        assert_eq!(line[1], if complete { "complete" } else { "incomplete" }, "`segvalue runs` says {line:?}, markers {markers:?}, manifest {m_id} {when}");
        if complete {
            assert!(held.iter().all(|&i| i == run_inputs[m_id]), "complete, yet tables hold {held:?} {when}");
        }
        (held, markers.iter().any(Option::is_none))
    };
    let first = logs.path().join("first.log");
    assert!(spawn(0, &first).wait().unwrap().success());
    run_inputs.insert(logged_run_id(&first).unwrap(), 0);
    check(&run_inputs, "after the first run");

    let (mut mixed, mut unmarked, mut finished) = (0, 0, 0);
    for n in 0..12 {
        let input = 1 - n % 2;
        let log = logs.path().join(format!("kill-{n}.log"));
        let mut child = spawn(input, &log);
        // The report is the last stage before the commit lock and the commit.
        while child.try_wait().unwrap().is_none() && !std::fs::read_to_string(&log).unwrap_or_default().contains("\"stage\":\"report\"") {
            std::thread::sleep(Duration::from_millis(2));
        }
        let ms = rng.gen_range(0..(commit_seconds * 1500.0).max(10.0) as u64);
        std::thread::sleep(Duration::from_millis(ms));
        let exited = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let status = child.wait().unwrap();
        if let Some(id) = logged_run_id(&log) {
            run_inputs.insert(id, input);
        }
        let (held, missing) = check(&run_inputs, &format!("killed {ms} ms into the commit (kill {n}, seed {seed})"));
        mixed += usize::from(held.iter().any(|&i| i != held[0]));
        unmarked += usize::from(missing);
        finished += usize::from(exited && status.success());
    }
    eprintln!("12 kills in S3 commits of {:.0} ms: {finished} runs had finished, {mixed} left old and new tables side by side, {unmarked} a partition without _SUCCESS", commit_seconds * 1000.0);
    assert!(mixed + unmarked > 0, "no kill landed inside a commit");
    let last = logs.path().join("last.log");
    assert!(spawn(1, &last).wait().unwrap().success(), "{}", std::fs::read_to_string(&last).unwrap());
    run_inputs.insert(logged_run_id(&last).unwrap(), 1);
    let (held, missing) = check(&run_inputs, "after the last run");
    assert!(held.iter().all(|&i| i == 1) && !missing, "{held:?}");
}

/// `format = "delta"` on moto's S3: the commits are put-if-absent writes of the log
/// (`If-None-Match: *`, object_store's default), a rerun makes version 1, and delta-rs's Python
/// package and Polars read, through S3, the same rows and types as the job's Parquet tables.
#[test]
fn delta_tables_on_s3_are_read_back_by_deltalake_and_polars() {
    use crate::delta::{D1, TABLES, assert_holds, check, output, parquet_reference};
    let (_moto, s3_port) = moto_with_dataset("a");
    let env = aws_env(s3_port);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let job = JobDir::retail_at("s3://raw/a", &output("s3://marts/delta/", "delta", ""));
    for _ in 0..2 {
        let (code, _, stderr) = segvalue_env(&["run", &job.job(), "--run-date", D1], &env_ref);
        assert_eq!(code, 0, "{stderr}");
        assert!(!stderr.contains("testing-secret-never-printed"));
    }
    let storage: Vec<String> = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{s3_port}")),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing-secret-never-printed".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    let mut args = vec!["delta", "s3://marts/delta", D1];
    args.extend(TABLES);
    for s in &storage {
        args.extend(["--storage", s.as_str()]);
    }
    let state = check(&args, &[]);
    assert_holds(&state, &parquet_reference(0, &[D1]), "Delta tables on S3");
    for t in TABLES {
        assert_eq!(state[t]["version"], 1, "{t}: the rerun's commit is version 1: {}", state[t]);
    }
    let left = py(s3_port, "import boto3\nprint(sum('_staging' in o['Key'] for o in boto3.client('s3').list_objects_v2(Bucket='marts').get('Contents', [])))");
    assert_eq!(left.trim(), "0");
}
