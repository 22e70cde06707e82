//! The WIT package: one source (`wit/`), copies that travel inside the crates that generate
//! bindings from it, and metadata a registry tool (`wkg`) can take.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use stagelock_tests::{Entry, tree};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file beneath `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    Ok(tree(dir)?
        .into_iter()
        .filter_map(|(path, entry)| match entry {
            Entry::File(bytes) => Some((path, bytes)),
            _ => None,
        })
        .collect())
}

#[test]
fn the_crates_copies_of_wit_are_identical_to_wit() -> Result<()> {
    let source = files(&repo().join("wit"))?;
    ensure!(
        source.len() >= 9,
        "wit/ looks incomplete: {:?}",
        source.keys()
    );
    for copy in ["host/stagelock-wasmtime/wit", "guest/wit"] {
        let copied = files(&repo().join(copy))?;
        for (path, bytes) in &source {
            match copied.get(path) {
                Some(c) if c == bytes => {}
                Some(_) => bail!(
                    "{copy}/{} differs from wit/{0}: run scripts/sync-wit.sh",
                    path.display()
                ),
                None => bail!(
                    "{copy}/{} is missing: run scripts/sync-wit.sh",
                    path.display()
                ),
            }
        }
        if let Some(extra) = copied.keys().find(|p| !source.contains_key(*p)) {
            bail!(
                "{copy}/{} is not in wit/: run scripts/sync-wit.sh",
                extra.display()
            );
        }
    }
    Ok(())
}

#[test]
fn an_independent_parser_reads_the_package_name_version_and_worlds() -> Result<()> {
    let mut resolve = wit_parser::Resolve::new();
    let (id, sources) = resolve.push_dir(repo().join("wit"))?;
    let package = &resolve.packages[id];
    assert_eq!(package.name.to_string(), "stagelock:staging@0.2.0");
    let interfaces: Vec<&str> = package.interfaces.keys().map(String::as_str).collect();
    assert_eq!(interfaces, ["locks", "staging"]);
    let worlds: Vec<&str> = package.worlds.keys().map(String::as_str).collect();
    assert_eq!(worlds, ["imports", "plugin"]);
    assert_eq!(sources.paths().count(), 9, "3 files of ours, 6 of WASI");
    Ok(())
}

#[test]
fn wkg_toml_declares_every_dependency_in_wit_deps() -> Result<()> {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("wkg.toml"))?.parse()?;
    let metadata = manifest["metadata"].as_table().context("[metadata]")?;
    for key in ["description", "license", "repository"] {
        ensure!(
            metadata.contains_key(key),
            "wkg.toml [metadata] lacks {key}"
        );
    }
    let overrides = manifest["overrides"].as_table().context("[overrides]")?;

    // What each vendored file declares, by an independent parser.
    let mut declared = BTreeMap::new();
    for entry in std::fs::read_dir(repo().join("wit/deps"))? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let group = wit_parser::UnresolvedPackageGroup::parse(&path, &text)
            .map_err(|(_, e)| anyhow::anyhow!("parse {}: {e}", path.display()))?;
        let name = &group.main.name;
        let rel = path.strip_prefix(repo())?.to_string_lossy().into_owned();
        declared.insert(
            format!("{}:{}", name.namespace, name.name),
            (rel, name.version.clone()),
        );
    }
    let names: Vec<&String> = overrides.keys().collect();
    ensure!(
        names == declared.keys().collect::<Vec<_>>(),
        "wkg.toml overrides {names:?}, wit/deps has {:?}",
        declared.keys()
    );
    for (name, (path, version)) in declared {
        let entry = overrides[&name].as_table().context("an inline table")?;
        assert_eq!(entry["path"].as_str(), Some(path.as_str()), "{name}");
        let version = version.map(|v| v.to_string());
        assert_eq!(entry["version"].as_str(), version.as_deref(), "{name}");
    }
    Ok(())
}

/// The host keeps serving `stagelock:staging@0.1.0` from a frozen copy: it must stay 0.1.0,
/// and 0.2.0 may only add to it, so that a guest moving to 0.2.0 changes nothing but the
/// version: in each file, the frozen copy's lines (docs, blank lines and the package line
/// aside) appear in the current file, in order.
#[test]
fn the_frozen_0_1_0_is_a_subset_of_the_current_package() -> Result<()> {
    let frozen = repo().join("host/stagelock-wasmtime/wit-compat/0.1.0");
    let mut resolve = wit_parser::Resolve::new();
    resolve.push_dir(repo().join("wit"))?;
    let (old, _) = resolve.push_dir(&frozen)?;
    assert_eq!(
        resolve.packages[old].name.to_string(),
        "stagelock:staging@0.1.0"
    );
    let code = |text: String| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with("package "))
            .map(str::to_owned)
            .collect()
    };
    for file in ["locks.wit", "staging.wit", "world.wit"] {
        let then = code(std::fs::read_to_string(frozen.join(file))?);
        let now = code(std::fs::read_to_string(repo().join("wit").join(file))?);
        let mut rest = now.iter();
        for line in &then {
            ensure!(
                rest.any(|l| l == line),
                "wit/{file} changed or dropped this line of 0.1.0: {line}"
            );
        }
    }
    Ok(())
}
