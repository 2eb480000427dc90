//! Functions in memory: metadata, log, cursors and leases for tests and
//! embedders. Every method takes the lock once and never across an await,
//! so each is atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::Error;
use crate::functions::model::{FunctionInfo, FunctionName, Invocation, LogQuery, Version};
use crate::functions::store::FunctionStore;
use crate::id::ProjectId;

/// The most invocations one log query returns.
pub(crate) const MAX_LOG_PAGE: usize = 1_000;

struct Function {
    info: FunctionInfo,
    versions: BTreeMap<u32, Version>,
}

#[derive(Default)]
struct Project {
    functions: BTreeMap<FunctionName, Function>,
    /// By id (time-ordered).
    invocations: BTreeMap<String, Invocation>,
    /// (function, trigger key) → sequence.
    cursors: BTreeMap<(FunctionName, String), u64>,
}

struct Lease {
    holder: String,
    until_ms: u64,
}

/// Functions in memory.
#[derive(Default)]
pub struct MemoryFunctions {
    projects: Mutex<HashMap<ProjectId, Project>>,
    leases: Mutex<HashMap<String, Lease>>,
}

fn poisoned() -> Error {
    Error::internal("functions memory store lock poisoned")
}

pub(crate) fn function_not_found(name: &FunctionName) -> Error {
    Error::NotFound(format!("function {name} not found"))
}

pub(crate) fn version_not_found(name: &FunctionName, number: u32) -> Error {
    Error::NotFound(format!("version {number} of function {name} not found"))
}

impl MemoryFunctions {
    pub fn new() -> MemoryFunctions {
        MemoryFunctions::default()
    }

    fn projects(&self) -> Result<MutexGuard<'_, HashMap<ProjectId, Project>>, Error> {
        self.projects.lock().map_err(|_| poisoned())
    }

    /// Reads the project (an empty one if it has nothing).
    fn read<T>(&self, project: &ProjectId, f: impl FnOnce(&Project) -> T) -> Result<T, Error> {
        let projects = self.projects()?;
        match projects.get(project) {
            Some(p) => Ok(f(p)),
            None => Ok(f(&Project::default())),
        }
    }

    fn write<T>(&self, project: &ProjectId, f: impl FnOnce(&mut Project) -> T) -> Result<T, Error> {
        let mut projects = self.projects()?;
        Ok(f(projects.entry(project.clone()).or_default()))
    }
}

#[async_trait]
impl FunctionStore for MemoryFunctions {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn check(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn add_version(&self, mut version: Version) -> Result<Version, Error> {
        let project = version.project.clone();
        self.write(&project, |p| {
            let function = p
                .functions
                .entry(version.function.clone())
                .or_insert_with(|| Function {
                    info: FunctionInfo {
                        project: version.project.clone(),
                        name: version.function.clone(),
                        active: 0,
                        latest: 0,
                        created_at: version.created_at,
                        updated_at: version.created_at,
                    },
                    versions: BTreeMap::new(),
                });
            let number = function.info.latest + 1;
            version.number = number;
            function.info.latest = number;
            function.info.active = number;
            function.info.updated_at = version.created_at;
            function.versions.insert(number, version.clone());
            version
        })
    }

    async fn function(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Option<FunctionInfo>, Error> {
        self.read(project, |p| p.functions.get(name).map(|f| f.info.clone()))
    }

    async fn functions(&self, project: &ProjectId) -> Result<Vec<FunctionInfo>, Error> {
        self.read(project, |p| {
            p.functions.values().map(|f| f.info.clone()).collect()
        })
    }

    async fn version(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        number: u32,
    ) -> Result<Option<Version>, Error> {
        self.read(project, |p| {
            p.functions
                .get(name)
                .and_then(|f| f.versions.get(&number).cloned())
        })
    }

    async fn versions(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Vec<Version>, Error> {
        self.read(project, |p| {
            p.functions
                .get(name)
                .map(|f| f.versions.values().rev().cloned().collect())
                .unwrap_or_default()
        })
    }

    async fn activate(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        number: u32,
    ) -> Result<FunctionInfo, Error> {
        let now = crate::id::now_millis();
        let mut projects = self.projects()?;
        let function = projects
            .get_mut(project)
            .and_then(|p| p.functions.get_mut(name))
            .ok_or_else(|| function_not_found(name))?;
        if !function.versions.contains_key(&number) {
            return Err(version_not_found(name, number));
        }
        function.info.active = number;
        function.info.updated_at = now;
        Ok(function.info.clone())
    }

    async fn delete_function(
        &self,
        project: &ProjectId,
        name: &FunctionName,
    ) -> Result<Vec<Version>, Error> {
        let mut projects = self.projects()?;
        let Some(p) = projects.get_mut(project) else {
            return Ok(Vec::new());
        };
        p.cursors.retain(|(function, _), _| function != name);
        Ok(p.functions
            .remove(name)
            .map(|f| f.versions.into_values().rev().collect())
            .unwrap_or_default())
    }

    async fn triggered(&self) -> Result<Vec<Version>, Error> {
        let projects = self.projects()?;
        let mut out: Vec<Version> = projects
            .values()
            .flat_map(|p| p.functions.values())
            .filter_map(|f| f.versions.get(&f.info.active))
            .filter(|v| !v.triggers.is_empty())
            .cloned()
            .collect();
        drop(projects);
        out.sort_by(|a, b| (&a.project, &a.function).cmp(&(&b.project, &b.function)));
        Ok(out)
    }

    async fn record(&self, invocation: &Invocation) -> Result<(), Error> {
        self.write(&invocation.project, |p| {
            if p.invocations.contains_key(&invocation.id) {
                return Err(Error::AlreadyExists(format!(
                    "invocation {} is recorded already",
                    invocation.id
                )));
            }
            p.invocations
                .insert(invocation.id.clone(), invocation.clone());
            Ok(())
        })?
    }

    async fn invocations(
        &self,
        project: &ProjectId,
        query: &LogQuery,
    ) -> Result<Vec<Invocation>, Error> {
        let limit = query.limit.clamp(1, MAX_LOG_PAGE);
        self.read(project, |p| {
            let newest_first: Box<dyn Iterator<Item = &Invocation>> = match &query.before {
                Some(before) => Box::new(p.invocations.range(..before.clone()).rev().map(|e| e.1)),
                None => Box::new(p.invocations.values().rev()),
            };
            newest_first
                .filter(|i| query.function.as_ref().is_none_or(|f| &i.function == f))
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn prune_invocations(&self, before_ms: u64) -> Result<u64, Error> {
        let mut projects = self.projects()?;
        let mut pruned = 0;
        for p in projects.values_mut() {
            let before = p.invocations.len();
            p.invocations.retain(|_, i| i.started_at >= before_ms);
            pruned += (before - p.invocations.len()) as u64;
        }
        Ok(pruned)
    }

    async fn cursor(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        key: &str,
    ) -> Result<Option<u64>, Error> {
        self.read(project, |p| {
            p.cursors.get(&(name.clone(), key.to_string())).copied()
        })
    }

    async fn set_cursor(
        &self,
        project: &ProjectId,
        name: &FunctionName,
        key: &str,
        seq: u64,
    ) -> Result<(), Error> {
        let mut projects = self.projects()?;
        let p = projects
            .get_mut(project)
            .filter(|p| p.functions.contains_key(name))
            .ok_or_else(|| function_not_found(name))?;
        p.cursors.insert((name.clone(), key.to_string()), seq);
        Ok(())
    }

    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, Error> {
        let mut leases = self.leases.lock().map_err(|_| poisoned())?;
        let free = leases
            .get(name)
            .is_none_or(|l| l.holder == holder || l.until_ms <= now_ms);
        if free {
            leases.insert(
                name.to_string(),
                Lease {
                    holder: holder.to_string(),
                    until_ms,
                },
            );
        }
        Ok(free)
    }

    async fn forget_project(&self, project: &ProjectId) -> Result<Vec<Version>, Error> {
        let removed = self.projects()?.remove(project);
        Ok(removed
            .map(|p| {
                p.functions
                    .into_values()
                    .flat_map(|f| f.versions.into_values().rev())
                    .collect()
            })
            .unwrap_or_default())
    }
}
