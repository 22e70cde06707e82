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
    assert_eq!(package.name.to_string(), "stagelock:staging@1.0.1");
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
        // As paths: on Windows `wit/deps\cli.wit` is `wit/deps/cli.wit`.
        let given = entry["path"].as_str().map(Path::new);
        assert_eq!(given, Some(Path::new(&path)), "{name}");
        let version = version.map(|v| v.to_string());
        assert_eq!(entry["version"].as_str(), version.as_deref(), "{name}");
    }
    Ok(())
}

/// Every item of the package carries an `@since` gate of a 1.x version no later than the
/// package's own: what lets a later 1.x add items without a frozen copy, and lets wasmtime give a
/// component built against 1.0.0 the host's newer 1.x. An item without a gate fails here.
#[test]
fn every_item_of_the_1_x_package_has_an_at_since_gate() -> Result<()> {
    use wit_parser::{Stability, WorldItem, WorldKey};
    let mut resolve = wit_parser::Resolve::new();
    let (id, _) = resolve.push_dir(repo().join("wit"))?;
    let package = &resolve.packages[id];
    let version = package
        .name
        .version
        .clone()
        .context("a versioned package")?;
    assert_eq!(version.major, 1);
    let check = |what: String, stability: &Stability| -> Result<()> {
        match stability {
            Stability::Stable {
                since,
                deprecated: None,
            } if since.major == version.major && *since <= version => Ok(()),
            other => bail!("{what}: {other:?}, not `@since` a 1.x up to {version}"),
        }
    };
    let mut checked = 0;
    for (name, &iface) in &package.interfaces {
        let iface = &resolve.interfaces[iface];
        check(format!("interface {name}"), &iface.stability)?;
        for (ty, &t) in &iface.types {
            check(format!("{name}.{ty}"), &resolve.types[t].stability)?;
            checked += 1;
        }
        for (func, f) in &iface.functions {
            check(format!("{name}.{func}"), &f.stability)?;
            checked += 1;
        }
    }
    for (name, &world) in &package.worlds {
        let world = &resolve.worlds[world];
        check(format!("world {name}"), &world.stability)?;
        for (key, item) in &world.imports {
            // Only the package's own interfaces: WASI's carry WASI's gates.
            if let (WorldKey::Interface(i), WorldItem::Interface { stability, .. }) = (key, item)
                && resolve.interfaces[*i].package == Some(id)
            {
                check(
                    format!("world {name}: import {}", resolve.name_world_key(key)),
                    stability,
                )?;
            }
        }
    }
    ensure!(
        checked >= 25,
        "only {checked} types and functions were checked"
    );
    Ok(())
}

/// The frozen copies may only grow: every line of 0.1.0 is in 0.2.0, both still name their own
/// versions, and 1.x keeps every function name of 0.2.0. The released 1.0.0 is kept as it was
/// (`wit-compat/1.0.0`), and `wit/`, a patch of it, differs from it in comments only.
#[test]
fn the_frozen_versions_are_what_they_were() -> Result<()> {
    let compat = repo().join("host/stagelock-wasmtime/wit-compat");
    let mut resolve = wit_parser::Resolve::new();
    resolve.push_dir(repo().join("wit"))?;
    let (v2, _) = resolve.push_dir(compat.join("0.2.0"))?;
    let mut released = wit_parser::Resolve::new();
    released.push_dir(repo().join("wit"))?; // for WASI, in wit/deps
    let (v100, _) = released.push_dir(compat.join("1.0.0"))?;
    assert_eq!(
        released.packages[v100].name.to_string(),
        "stagelock:staging@1.0.0"
    );
    let (v1, _) = resolve.push_dir(compat.join("0.1.0"))?;
    assert_eq!(
        resolve.packages[v2].name.to_string(),
        "stagelock:staging@0.2.0"
    );
    assert_eq!(
        resolve.packages[v1].name.to_string(),
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
        let released = code(std::fs::read_to_string(compat.join("1.0.0").join(file))?);
        let patched = code(std::fs::read_to_string(repo().join("wit").join(file))?);
        ensure!(
            released == patched,
            "wit/{file} differs from the released 1.0.0 beyond its comments: a patch version \
             may only clarify docs (a new item is a minor version, with its @since gate)"
        );
        let then = code(std::fs::read_to_string(compat.join("0.1.0").join(file))?);
        let now = code(std::fs::read_to_string(compat.join("0.2.0").join(file))?);
        let mut rest = now.iter();
        for line in &then {
            ensure!(
                rest.any(|l| l == line),
                "wit-compat/0.2.0/{file} changed or dropped this line of 0.1.0: {line}"
            );
        }
    }
    let functions = |id| -> Vec<String> {
        let mut names: Vec<String> = resolve.packages[id]
            .interfaces
            .values()
            .flat_map(|&i| resolve.interfaces[i].functions.keys().cloned())
            .collect();
        names.sort();
        names
    };
    let (current, _) = resolve
        .packages
        .iter()
        .find(|(_, p)| p.name.version.as_ref().is_some_and(|v| v.major == 1))
        .context("1.x")?;
    let current = functions(current);
    for name in functions(v2) {
        ensure!(current.contains(&name), "1.x dropped 0.2.0's {name}");
    }
    Ok(())
}
