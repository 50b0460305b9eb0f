//! The deployment files in `deploy/` parse as YAML and agree with the CLI: the GitHub Actions
//! matrix has one entry per shard and runs `sim run --shard K/N` then `sim merge`; the
//! Kubernetes Indexed Job runs one pod per shard with `JOB_COMPLETION_INDEX` as K.

mod common;
use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let text = std::fs::read_to_string(common::workspace().join(path)).expect("the file exists");
    let mut documents = YamlLoader::load_from_str(&text).expect("valid YAML");
    assert_eq!(documents.len(), 1, "{path}: one document");
    documents.remove(0)
}

fn shards_of(env: &Yaml) -> i64 {
    env.as_str()
        .and_then(|text| text.parse().ok())
        .expect("SHARDS is a number in quotes")
}

#[test]
fn github_workflow_runs_every_shard_then_merges() {
    let workflow = load("deploy/github/sharded-run.yml");
    let shards = shards_of(&workflow["env"]["SHARDS"]);
    let matrix = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
        .as_vec()
        .expect("a shard matrix");
    let indices: Vec<i64> = matrix.iter().filter_map(Yaml::as_i64).collect();
    assert_eq!(
        indices,
        (0..shards).collect::<Vec<_>>(),
        "one job per shard"
    );
    let steps = |job: &str| -> String {
        workflow["jobs"][job]["steps"]
            .as_vec()
            .expect("steps")
            .iter()
            .filter_map(|step| step["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(steps("shard").contains("--shard \"${{ matrix.shard }}/$SHARDS\""));
    assert!(steps("merge").contains("-p sim -- merge"));
    assert_eq!(workflow["jobs"]["merge"]["needs"].as_str(), Some("shard"));
}

#[test]
fn kubernetes_indexed_job_runs_one_pod_per_shard() {
    let job = load("deploy/kubernetes/sharded-run.yaml");
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let container = &spec["template"]["spec"]["containers"][0];
    let shards = container["env"]
        .as_vec()
        .expect("env")
        .iter()
        .find(|var| var["name"].as_str() == Some("SHARDS"))
        .map(|var| shards_of(&var["value"]))
        .expect("a SHARDS variable");
    assert_eq!(spec["completions"].as_i64(), Some(shards));
    let args = container["args"][0].as_str().expect("a shell command");
    assert!(
        args.contains("--shard \"$JOB_COMPLETION_INDEX/$SHARDS\""),
        "{args}"
    );
}
