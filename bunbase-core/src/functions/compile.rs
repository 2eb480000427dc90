//! Compiling a deployment's source files into a [`Bundle`] QuickJS can run.
//!
//! A function is compiled once, at deploy time, so that invocations never
//! parse TypeScript: each file is parsed (TypeScript for `.ts`/`.mts`),
//! checked, stripped of its types by oxc's TypeScript transform, and printed
//! back as plain JavaScript that keeps its ES module syntax. Every import is
//! checked to name a file of the deployment and rewritten to that file's
//! path, so the runtime's module loader looks modules up by name, verbatim.
//!
//! Everything a developer can get wrong is refused here, with the file and,
//! where there is one, the 1-based `line:column` (`index.ts:3:7: …`):
//! bad paths, syntax errors, JSX, npm/URL imports, dynamic `import()`,
//! imports of missing files and an entry without a default export.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use oxc_allocator::Allocator;
use oxc_ast::AstKind;
use oxc_ast::ast::{
    ExportDefaultDeclarationKind, ExportSpecifier, ImportOrExportKind, Program, Statement, Str,
    StringLiteral, TSModuleReference,
};
use oxc_codegen::Codegen;
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::{GetSpan, SourceType};
use oxc_transformer::{EnvOptions, Module, TransformOptions, Transformer};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::functions::model::SourceFile;

/// One compiled module: plain JavaScript (ES module syntax kept: import/export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledModule {
    /// The path of the source file (`lib/util.ts`), also the module's name
    /// for the runtime's loader, even though the code is now JavaScript.
    pub path: String,
    pub code: String,
}

/// What a deployment compiles to; stored as JSON (serde) and loaded into QuickJS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The path of the entry module, whose default export handles requests.
    pub entry: String,
    /// Every file of the deployment, in the order they were given.
    pub modules: Vec<CompiledModule>,
}

/// Bounds of a deployment.
#[derive(Debug, Clone, Copy)]
pub struct CompileLimits {
    pub max_files: usize,
    /// The sum of the files' code, in bytes.
    pub max_source_bytes: usize,
}

/// The version of [`Bundle::to_bytes`]'s format, stored beside the bundle so
/// that a later format can still read (or migrate) the bundles of today.
const BUNDLE_FORMAT: u32 = 1;

/// A bundle as stored: the bundle's own fields plus `"format"`.
#[derive(Serialize)]
struct StoredRef<'b> {
    format: u32,
    #[serde(flatten)]
    bundle: &'b Bundle,
}

#[derive(Deserialize)]
struct Stored {
    format: u32,
    #[serde(flatten)]
    bundle: Bundle,
}

impl Bundle {
    /// The module with this exact path.
    pub fn module(&self, path: &str) -> Option<&CompiledModule> {
        self.modules.iter().find(|m| m.path == path)
    }

    /// The stored form: JSON carrying a format version.
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = StoredRef {
            format: BUNDLE_FORMAT,
            bundle: self,
        };
        // Strings and a number only: serializing cannot fail.
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    /// Reads back what [`Bundle::to_bytes`] wrote. Anything else is our
    /// data gone bad, not the caller's mistake: an internal error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, Error> {
        let stored: Stored = serde_json::from_slice(bytes)
            .map_err(|err| Error::internal(format!("corrupt function bundle: {err}")))?;
        if stored.format != BUNDLE_FORMAT {
            return Err(Error::internal(format!(
                "function bundle in unknown format {} (this build reads format {BUNDLE_FORMAT})",
                stored.format
            )));
        }
        Ok(stored.bundle)
    }
}

/// The longest file path accepted, in bytes.
const MAX_PATH_BYTES: usize = 256;

/// Extensions a source file may have; TypeScript for the `t` ones.
const SOURCE_EXTENSIONS: [&str; 4] = ["js", "mjs", "ts", "mts"];

/// Extensions tried, in order, on an import specifier that names no file.
const RESOLVE_EXTENSIONS: [&str; 4] = ["ts", "js", "mts", "mjs"];

/// Entry files picked, in order, when the deployment names none.
const DEFAULT_ENTRIES: [&str; 4] = ["index.ts", "index.js", "index.mts", "index.mjs"];

/// An oxc diagnostic as a user error: `path:line:col: message`, at its
/// primary label, else at its last one (a redeclaration labels the first
/// declaration, then the offending one). A macro because `oxc_diagnostics`,
/// whose type this is, is not among our dependencies.
macro_rules! diagnostic {
    ($file:expr, $diagnostic:expr) => {{
        let diagnostic = $diagnostic;
        let labels = &diagnostic.labels;
        let label = labels
            .iter()
            .find(|label| label.primary())
            .or_else(|| labels.iter().max_by_key(|label| label.offset()));
        match label {
            Some(label) => at($file, label.offset(), &diagnostic.message),
            None => Error::invalid(format!("{}: {}", $file.path, diagnostic.message)),
        }
    }};
}

/// Compiles a deployment: checks its files and limits, picks the entry and
/// turns every file into a [`CompiledModule`].
pub fn compile(
    files: &[SourceFile],
    entry: Option<&str>,
    limits: CompileLimits,
) -> Result<Bundle, Error> {
    check_limits(files, limits)?;
    let mut paths = HashSet::with_capacity(files.len());
    for file in files {
        check_path(&file.path)?;
        if !paths.insert(file.path.as_str()) {
            return Err(Error::invalid(format!(
                "two files have the path {:?}",
                file.path
            )));
        }
    }
    let entry = choose_entry(files, entry)?;
    let modules = files
        .iter()
        .map(|file| compile_file(file, &paths, file.path == entry))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Bundle {
        entry: entry.to_string(),
        modules,
    })
}

fn check_limits(files: &[SourceFile], limits: CompileLimits) -> Result<(), Error> {
    if files.is_empty() {
        return Err(Error::invalid(
            "a deployment needs at least one source file",
        ));
    }
    if files.len() > limits.max_files {
        return Err(Error::invalid(format!(
            "too many files: {}, a deployment has at most {}",
            files.len(),
            limits.max_files
        )));
    }
    let total = files
        .iter()
        .fold(0usize, |sum, file| sum.saturating_add(file.code.len()));
    if total > limits.max_source_bytes {
        return Err(Error::PayloadTooLarge(format!(
            "the source files total {total} bytes, over the limit of {} bytes",
            limits.max_source_bytes
        )));
    }
    Ok(())
}

/// A path is relative, `/`-separated, at most [`MAX_PATH_BYTES`], made of
/// plain segments, and names a JavaScript or TypeScript file.
fn check_path(path: &str) -> Result<(), Error> {
    let refuse = |why: &str| Err(Error::invalid(format!("invalid file path {path:?}: {why}")));
    if path.is_empty() {
        return refuse("the path is empty");
    }
    if path.len() > MAX_PATH_BYTES {
        return refuse(&format!("longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.chars().any(char::is_control) {
        return refuse("it contains a control character");
    }
    if path.contains('\\') {
        return refuse("separate folders with '/', not '\\'");
    }
    if path.starts_with('/') {
        return refuse("it must be relative to the function's folder (no leading '/')");
    }
    for segment in path.split('/') {
        match segment {
            "" => return refuse("it has an empty segment ('//' or a trailing '/')"),
            "." | ".." => return refuse("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let has_source_extension = name
        .rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && SOURCE_EXTENSIONS.contains(&ext));
    if !has_source_extension {
        return refuse("the file must end in .js, .mjs, .ts or .mts");
    }
    Ok(())
}

fn is_typescript(path: &str) -> bool {
    path.ends_with(".ts") || path.ends_with(".mts")
}

/// The entry named by the deployment, else `index.ts`, `index.js`,
/// `index.mts`, `index.mjs`, else the only file.
fn choose_entry<'f>(files: &'f [SourceFile], entry: Option<&str>) -> Result<&'f str, Error> {
    let find = |path: &str| {
        files
            .iter()
            .find(|file| file.path == path)
            .map(|file| file.path.as_str())
    };
    if let Some(entry) = entry {
        return find(entry).ok_or_else(|| {
            Error::invalid(format!(
                "the entry {entry:?} is not one of the deployment's files"
            ))
        });
    }
    if let Some(found) = DEFAULT_ENTRIES.into_iter().find_map(find) {
        return Ok(found);
    }
    match files {
        [only] => Ok(only.path.as_str()),
        _ => Err(Error::invalid(format!(
            "no entry file among the {} files: add an index.ts (or index.js), or name the entry",
            files.len()
        ))),
    }
}

/// Parses, checks, strips and prints one file.
fn compile_file(
    file: &SourceFile,
    paths: &HashSet<&str>,
    is_entry: bool,
) -> Result<CompiledModule, Error> {
    let allocator = Allocator::default();
    let source_type = if is_typescript(&file.path) {
        SourceType::ts()
    } else {
        SourceType::mjs()
    }
    // `SourceType::ts()` is "unambiguous" (script unless it has imports):
    // every file of a deployment is a module.
    .with_module(true);

    let parsed = Parser::new(&allocator, &file.code, source_type).parse();
    if let Some(error) = parsed.diagnostics.errors().next() {
        // Without JSX enabled, JSX is a confusing syntax error: say what it is.
        if let Some(offset) = find_jsx(&file.code, source_type) {
            return Err(at(file, offset, "JSX is not supported"));
        }
        return Err(diagnostic!(file, error));
    }
    if let Some(import) = parsed.module_record.dynamic_imports.first() {
        return Err(at(
            file,
            import.span.start,
            "dynamic import() is not supported; use a static import",
        ));
    }
    let mut program = parsed.program;
    let targets = resolve_imports(file, &program, paths)?;

    let semantic = SemanticBuilder::new()
        // The transformer adds scopes and symbols (enums, namespaces).
        .with_excess_capacity(2.0)
        // Without it the TypeScript transform panics on enums.
        .with_enum_eval(true)
        // Early errors (`let x; let x;`) that QuickJS would refuse at load.
        .with_check_syntax_error(true)
        // The node list, to look for syntax QuickJS lacks.
        .with_build_nodes(true)
        .build(&program);
    if let Some(error) = semantic.diagnostics.errors().next() {
        return Err(diagnostic!(file, error));
    }
    for node in semantic.semantic.nodes().iter() {
        let lacking = match node.kind() {
            // The TypeScript transform keeps them; QuickJS refuses them at load.
            AstKind::Decorator(_) => "decorators are not supported",
            AstKind::AccessorProperty(_) => "`accessor` fields are not supported",
            _ => continue,
        };
        return Err(at(file, node.kind().span().start, lacking));
    }
    let scoping = semantic.semantic.into_scoping();

    // Only the TypeScript transform: QuickJS runs ES2023 as it is.
    let options = TransformOptions {
        env: EnvOptions {
            // Refuses `import x = require()` and `export =` with a message.
            module: Module::Esm,
            ..EnvOptions::default()
        },
        ..TransformOptions::default()
    };
    let transformed = Transformer::new(&allocator, Path::new(&file.path), &options)
        .build_with_scoping(scoping, &mut program);
    // Warnings too: they flag code the transform could not keep as written
    // (a namespace exporting a `let`).
    if let Some(problem) = transformed.diagnostics.first() {
        return Err(diagnostic!(file, problem));
    }

    rewrite_imports(file, &mut program, &targets, &allocator)?;
    if is_entry && !has_default_export(&program) {
        return Err(Error::invalid(format!(
            "{}: the entry module has no default export \
             (export default async (request, ctx) => new Response(...))",
            file.path
        )));
    }
    let code = Codegen::new().build(&program).code;
    Ok(CompiledModule {
        path: file.path.clone(),
        code,
    })
}

/// Where the first JSX element is, if the code parses once JSX is enabled.
fn find_jsx(code: &str, source_type: SourceType) -> Option<u32> {
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, code, source_type.with_jsx(true)).parse();
    if parsed.diagnostics.has_errors() {
        return None;
    }
    let semantic = SemanticBuilder::new()
        .with_build_nodes(true)
        .build(&parsed.program);
    semantic
        .semantic
        .nodes()
        .iter()
        .map(|node| node.kind())
        .find(|kind| matches!(kind, AstKind::JSXElement(_) | AstKind::JSXFragment(_)))
        .map(|kind| kind.span().start)
}

/// The module a statement imports or re-exports from, and whether it does
/// so for types only (then it leaves no trace in the output).
fn module_source<'p, 'a>(statement: &'p Statement<'a>) -> Option<(&'p StringLiteral<'a>, bool)> {
    match statement {
        Statement::ImportDeclaration(decl) => {
            Some((&decl.source, decl.import_kind == ImportOrExportKind::Type))
        }
        Statement::ExportFromDeclaration(decl) => {
            Some((&decl.source, decl.export_kind == ImportOrExportKind::Type))
        }
        Statement::ExportAllDeclaration(decl) => {
            Some((&decl.source, decl.export_kind == ImportOrExportKind::Type))
        }
        _ => None,
    }
}

/// Checks every import of a file and maps each specifier to the path of the
/// file it names. Type-only imports (`import type … from "pkg"`) are left
/// alone: the TypeScript transform removes them.
fn resolve_imports(
    file: &SourceFile,
    program: &Program<'_>,
    paths: &HashSet<&str>,
) -> Result<HashMap<String, String>, Error> {
    let mut targets = HashMap::new();
    for statement in &program.body {
        match statement {
            Statement::TSImportEqualsDeclaration(decl)
                if decl.import_kind == ImportOrExportKind::Value
                    && matches!(
                        decl.module_reference,
                        TSModuleReference::ExternalModuleReference(_)
                    ) =>
            {
                return Err(at(
                    file,
                    decl.span.start,
                    "`import x = require(...)` is CommonJS; use `import x from \"./x.ts\"`",
                ));
            }
            Statement::TSExportAssignment(assignment) => {
                return Err(at(
                    file,
                    assignment.span.start,
                    "`export =` is CommonJS; use `export default`",
                ));
            }
            _ => {}
        }
        if let Statement::ImportDeclaration(decl) = statement
            && decl.phase.is_some()
        {
            return Err(at(
                file,
                decl.span.start,
                "`import defer` and `import source` are not supported",
            ));
        }
        let Some((source, type_only)) = module_source(statement) else {
            continue;
        };
        if type_only {
            continue;
        }
        let specifier = source.value.as_str();
        let target = resolve(&file.path, specifier, paths)
            .map_err(|why| at(file, source.span.start, &why))?;
        targets.insert(specifier.to_string(), target);
    }
    Ok(targets)
}

/// The path of the file an import specifier names, seen from `importer`:
/// the exact path, a `.js`/`.mjs` specifier's `.ts`/`.mts` source, the path
/// plus `.ts`, `.js`, `.mts` or `.mjs`, else its `index.ts` or `index.js`.
fn resolve(importer: &str, specifier: &str, paths: &HashSet<&str>) -> Result<String, String> {
    let relative = specifier == "."
        || specifier == ".."
        || specifier.starts_with("./")
        || specifier.starts_with("../");
    if !relative {
        return Err(format!(
            "cannot import {specifier:?}: npm packages and URL imports are not supported; \
             import the deployment's own files with a relative path (\"./util.ts\")"
        ));
    }
    let mut segments: Vec<&str> = importer.split('/').collect();
    segments.pop(); // The importer's own file name.
    for segment in specifier.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(format!(
                        "cannot import {specifier:?}: it points outside the function's folder"
                    ));
                }
            }
            name => segments.push(name),
        }
    }
    let base = segments.join("/");
    let mut candidates = Vec::new();
    if !base.is_empty() {
        candidates.push(base.clone());
        if let Some(stem) = base.strip_suffix(".js") {
            candidates.push(format!("{stem}.ts"));
        } else if let Some(stem) = base.strip_suffix(".mjs") {
            candidates.push(format!("{stem}.mts"));
        }
        for ext in RESOLVE_EXTENSIONS {
            candidates.push(format!("{base}.{ext}"));
        }
    }
    let folder = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    candidates.push(format!("{folder}index.ts"));
    candidates.push(format!("{folder}index.js"));
    match candidates.iter().find(|c| paths.contains(c.as_str())) {
        Some(found) => Ok(found.clone()),
        None => Err(format!(
            "cannot import {specifier:?}: no such file in the deployment (looked for {})",
            candidates.join(", ")
        )),
    }
}

/// Points every remaining import and re-export at the canonical path of its
/// target, so that the runtime loader can take names as they are.
fn rewrite_imports<'a>(
    file: &SourceFile,
    program: &mut Program<'a>,
    targets: &HashMap<String, String>,
    allocator: &'a Allocator,
) -> Result<(), Error> {
    for statement in program.body.iter_mut() {
        let source = match statement {
            Statement::ImportDeclaration(decl) => &mut decl.source,
            Statement::ExportFromDeclaration(decl) => &mut decl.source,
            Statement::ExportAllDeclaration(decl) => &mut decl.source,
            _ => continue,
        };
        let Some(target) = targets.get(source.value.as_str()) else {
            // Only the transform could have added it (a helper module).
            return Err(at(
                file,
                source.span.start,
                &format!(
                    "compiling this file needs the module {:?}, which is not available",
                    source.value.as_str()
                ),
            ));
        };
        source.value = Str::from_str_in(target, &allocator);
        // Codegen prints `raw` when it has one: drop the old spelling.
        source.raw = None;
    }
    Ok(())
}

/// `export default …` in any form, or `default` among the names a module
/// exports (`export { handler as default }`, `export { default } from …`).
fn has_default_export(program: &Program<'_>) -> bool {
    let is_default = |spec: &ExportSpecifier<'_>| {
        spec.export_kind == ImportOrExportKind::Value && spec.exported.name().as_str() == "default"
    };
    program.body.iter().any(|statement| match statement {
        Statement::ExportDefaultDeclaration(decl) => !matches!(
            decl.declaration,
            ExportDefaultDeclarationKind::TSInterfaceDeclaration(_)
        ),
        Statement::ExportNamedDeclaration(decl) => {
            decl.export_kind == ImportOrExportKind::Value && decl.specifiers.iter().any(is_default)
        }
        Statement::ExportFromDeclaration(decl) => {
            decl.export_kind == ImportOrExportKind::Value && decl.specifiers.iter().any(is_default)
        }
        _ => false,
    })
}

/// A user error at a byte offset of a file: `path:line:col: message`.
fn at(file: &SourceFile, offset: u32, message: &str) -> Error {
    let (line, column) = line_column(&file.code, offset);
    Error::invalid(format!("{}:{line}:{column}: {message}", file.path))
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(code: &str, offset: u32) -> (usize, usize) {
    let mut end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(code.len());
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    let before = &code[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    const LIMITS: CompileLimits = CompileLimits {
        max_files: 16,
        max_source_bytes: 64 * 1024,
    };

    fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|(path, code)| SourceFile {
                path: path.to_string(),
                code: code.to_string(),
            })
            .collect()
    }

    fn build(list: &[(&str, &str)]) -> Result<Bundle, Error> {
        compile(&files(list), None, LIMITS)
    }

    fn code<'b>(bundle: &'b Bundle, path: &str) -> &'b str {
        &bundle.module(path).expect("module in bundle").code
    }

    /// The message of a refusal, checking it is an `InvalidInput`.
    fn refusal(list: &[(&str, &str)]) -> String {
        let err = build(list).expect_err("should be refused");
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        err.to_string()
    }

    /// Parses as plain JavaScript: no type syntax is left.
    fn assert_plain_js(code: &str) {
        let allocator = Allocator::default();
        let parsed = Parser::new(&allocator, code, SourceType::mjs()).parse();
        assert!(
            parsed.diagnostics.is_empty(),
            "not plain JavaScript: {:?}\n{code}",
            parsed.diagnostics.first().map(|d| d.message.to_string())
        );
    }

    /// Loads a bundle into QuickJS the way the runtime does (module names are
    /// bundle paths, resolved verbatim) and calls the entry's default export
    /// with `arg`, returning what it returns as JSON.
    fn run(bundle: &Bundle, arg: &str) -> String {
        use rquickjs::loader::{ImportAttributes, Loader, Resolver};
        use rquickjs::module::Declared;
        use rquickjs::{Context, Ctx, Function, Module, Object, Runtime, Value};

        struct Verbatim;
        impl Resolver for Verbatim {
            fn resolve<'js>(
                &mut self,
                _ctx: &Ctx<'js>,
                _base: &str,
                name: &str,
                _attributes: Option<ImportAttributes<'js>>,
            ) -> rquickjs::Result<String> {
                Ok(name.to_string())
            }
        }
        struct FromBundle(Bundle);
        impl Loader for FromBundle {
            fn load<'js>(
                &mut self,
                ctx: &Ctx<'js>,
                name: &str,
                _attributes: Option<ImportAttributes<'js>>,
            ) -> rquickjs::Result<Module<'js, Declared>> {
                match self.0.module(name) {
                    Some(module) => Module::declare(ctx.clone(), name, module.code.as_str()),
                    None => Err(rquickjs::Error::new_loading(name)),
                }
            }
        }

        let runtime = Runtime::new().expect("runtime");
        runtime.set_loader(Verbatim, FromBundle(bundle.clone()));
        let context = Context::full(&runtime).expect("context");
        context.with(|ctx| {
            let caught = |err: rquickjs::Error| format!("{err}: {:?}", ctx.catch());
            let namespace: Object = Module::import(&ctx, bundle.entry.as_str())
                .and_then(|promise| promise.finish())
                .map_err(caught)
                .expect("entry loads");
            let handler: Function = namespace.get("default").expect("default export");
            let arg: Value = ctx.json_parse(arg).expect("argument");
            let result: Value = handler.call((arg,)).map_err(caught).expect("call");
            let result: Value = match result.clone().into_promise() {
                Some(promise) => promise.finish().map_err(caught).expect("awaited"),
                None => result,
            };
            ctx.json_stringify(result)
                .expect("stringify")
                .expect("a JSON value")
                .to_string()
                .expect("string")
        })
    }

    const TYPESCRIPT: &str = r#"
interface Greeting { text: string; loud?: boolean }
type Id<T> = T;
enum Color { Red, Green = 5, Blue }
const enum Size { Small = 1, Large = 2 }
namespace Shapes { export const sides = 4; }
abstract class Base<T> {
    constructor(protected readonly value: T) {}
    abstract show(): string;
}
class Box<T extends object> extends Base<T> {
    private count: number = 1;
    declare tag: string;
    show(): string { return JSON.stringify(this.value) + this.count; }
}
function first<T>(items: T[]): T | undefined { return items[0]; }
const config = { name: "x" } satisfies { name: string };
export default async function (input: unknown): Promise<Id<object>> {
    const greeting = { text: "hi" } as Greeting;
    const n = <number>(input as any).n!;
    return {
        text: greeting.text,
        n,
        color: Color.Green + Color.Blue,
        name: Color[Color.Red],
        size: Size.Large,
        sides: Shapes.sides,
        first: first<number>([7, 8]),
        box: new Box({ a: 1 }).show(),
        config: config.name,
    };
}
"#;

    #[test]
    fn typescript_is_stripped_to_plain_javascript() {
        let bundle = build(&[("index.ts", TYPESCRIPT)]).expect("compiles");
        let js = code(&bundle, "index.ts");
        assert_plain_js(js);
        for type_syntax in [
            "interface",
            "type Id",
            ": string",
            ": number",
            "<T>",
            "<number>",
            " as ",
            "satisfies",
            "abstract",
            "private",
            "declare",
            "readonly",
        ] {
            assert!(!js.contains(type_syntax), "{type_syntax:?} left in:\n{js}");
        }
        assert_eq!(
            run(&bundle, r#"{"n": 3}"#),
            r#"{"text":"hi","n":3,"color":11,"name":"Red","size":2,"sides":4,"first":7,"box":"{\"a\":1}1","config":"x"}"#
        );
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let err = refusal(&[(
            "index.ts",
            "const a = 1;\nlet b: number = (;\nexport default a;\n",
        )]);
        assert!(err.starts_with("index.ts:2:18: "), "{err}");
        let err = refusal(&[
            ("index.js", "import './lib/x.js';\nexport default 1;"),
            ("lib/x.js", "// héllo\n  let x = 1 2;"),
        ]);
        // oxc places a missing semicolon right after the statement's last token.
        assert!(
            err.starts_with("lib/x.js:2:12: Expected a semicolon"),
            "{err}"
        );
        // Early errors QuickJS would refuse at load are caught too.
        let err = refusal(&[("index.js", "let a;\nlet a;\nexport default a;")]);
        assert!(err.starts_with("index.js:2:5: "), "{err}");
    }

    #[test]
    fn the_entry_needs_a_default_export() {
        let err = refusal(&[("index.ts", "export const handler = () => 1;")]);
        assert_eq!(
            err,
            "index.ts: the entry module has no default export \
             (export default async (request, ctx) => new Response(...))"
        );
        // A type is not a default export.
        let err = refusal(&[("index.ts", "export default interface Handler {}")]);
        assert!(err.contains("no default export"), "{err}");
        // Other modules need none.
        build(&[
            (
                "index.ts",
                "import { x } from './x';\nexport default () => x;",
            ),
            ("x.ts", "export const x = 1;"),
        ])
        .expect("compiles");
    }

    #[test]
    fn every_form_of_default_export_is_accepted() {
        for entry in [
            "export default 1;",
            "export default function () { return 1; }",
            "export default class {}",
            "const handler = () => 1;\nexport { handler as default };",
            "const handler = () => 1;\nexport { handler as 'default' };",
            "export { default } from './x';",
            "export { y as default } from './x';",
        ] {
            build(&[
                ("index.ts", entry),
                ("x.ts", "export default 1;\nexport const y = 2;"),
            ])
            .unwrap_or_else(|err| panic!("{entry:?}: {err}"));
        }
    }

    #[test]
    fn bare_and_url_imports_are_refused_with_their_position() {
        let err = refusal(&[(
            "index.ts",
            "// deps\nimport _ from \"lodash\";\nexport default _;",
        )]);
        assert!(err.starts_with("index.ts:2:15: "), "{err}");
        assert!(
            err.contains("npm packages and URL imports are not supported"),
            "{err}"
        );
        for specifier in [
            "node:fs",
            "https://esm.sh/react",
            "/abs.ts",
            "lib/util.ts",
            ".hidden",
        ] {
            let source = format!("export {{ x }} from '{specifier}';\nexport default 1;");
            let err = refusal(&[("index.js", &source)]);
            assert!(err.starts_with("index.js:1:19: cannot import"), "{err}");
        }
        let err = refusal(&[("index.mjs", "export * from 'pkg';\nexport default 1;")]);
        assert!(err.starts_with("index.mjs:1:15: "), "{err}");
        // Types from a package vanish with the types: fine.
        build(&[(
            "index.ts",
            "import type { Handler } from '@types/x';\nexport type { T } from 'pkg';\n\
             type Lib = typeof import('pkg');\nexport default ((() => 1) as Handler);",
        )])
        .expect("type-only imports compile");
    }

    #[test]
    fn commonjs_forms_are_refused() {
        let err = refusal(&[(
            "index.ts",
            "import fs = require('./fs');\nexport default fs;",
        )]);
        assert!(
            err.starts_with("index.ts:1:1: `import x = require"),
            "{err}"
        );
        let err = refusal(&[("index.ts", "const f = 1;\nexport = f;")]);
        assert!(err.starts_with("index.ts:2:1: `export =`"), "{err}");
    }

    #[test]
    fn syntax_quickjs_lacks_is_refused() {
        let err = refusal(&[(
            "index.ts",
            "function sealed(c: any) { return c; }\n@sealed class A {}\nexport default A;",
        )]);
        assert_eq!(err, "index.ts:2:1: decorators are not supported");
        let err = refusal(&[("index.js", "export default class {\n  accessor x = 1;\n}")]);
        assert_eq!(err, "index.js:2:3: `accessor` fields are not supported");
        let err = refusal(&[(
            "index.js",
            "import defer * as x from './x.js';\nexport default x;",
        )]);
        assert!(err.starts_with("index.js:1:1: `import defer`"), "{err}");
    }

    #[test]
    fn dynamic_import_is_refused() {
        let err = refusal(&[(
            "index.ts",
            "export default async () => {\n    const m = await import('./x.ts');\n};",
        )]);
        assert!(err.starts_with("index.ts:2:21: dynamic import()"), "{err}");
    }

    #[test]
    fn a_js_specifier_names_its_ts_source_and_is_rewritten() {
        let bundle = build(&[
            (
                "index.ts",
                "import { twice } from './util.js';\nexport default (n: number) => twice(n);",
            ),
            (
                "util.ts",
                "export const twice = (n: number): number => n * 2;",
            ),
        ])
        .expect("compiles");
        let js = code(&bundle, "index.ts");
        assert!(js.contains(r#"from "util.ts""#), "{js}");
        assert!(!js.contains("./util"), "{js}");
        assert_eq!(run(&bundle, "21"), "42");
    }

    #[test]
    fn parent_and_folder_imports_resolve_from_a_subfolder() {
        let bundle = build(&[
            (
                "index.js",
                "import { area } from './lib';\nexport * from \"./lib/shapes/square.mjs\";\n\
                 export default (n) => area(n);",
            ),
            ("lib/index.ts", "export { area } from './shapes/square';"),
            (
                "lib/shapes/square.mjs",
                "import { unit } from '../units.ts';\nexport const area = (n) => n * n * unit;",
            ),
            ("lib/units.ts", "export const unit: number = 1;"),
        ])
        .expect("compiles");
        assert!(code(&bundle, "index.js").contains(r#"from "lib/index.ts""#));
        assert!(code(&bundle, "index.js").contains(r#"from "lib/shapes/square.mjs""#));
        assert!(code(&bundle, "lib/index.ts").contains(r#"from "lib/shapes/square.mjs""#));
        assert!(code(&bundle, "lib/shapes/square.mjs").contains(r#"from "lib/units.ts""#));
        assert_eq!(run(&bundle, "5"), "25");
    }

    #[test]
    fn import_cycles_are_legal() {
        let bundle = build(&[
            (
                "index.ts",
                "import { b } from './b';\nexport const a = 1;\nexport default () => b();",
            ),
            (
                "b.ts",
                "import { a } from './index';\nexport const b = () => a + 1;",
            ),
        ])
        .expect("compiles");
        assert_eq!(run(&bundle, "null"), "2");
    }

    #[test]
    fn an_import_of_a_missing_file_is_refused() {
        let err = refusal(&[
            ("index.ts", "import './lib/a';\nexport default 1;"),
            ("lib/a.ts", "import { x } from '../missing';\nexport { x };"),
        ]);
        assert!(
            err.starts_with(
                "lib/a.ts:1:19: cannot import \"../missing\": no such file in the deployment \
                 (looked for missing, missing.ts"
            ),
            "{err}"
        );
        let err = refusal(&[("index.ts", "import '../../up';\nexport default 1;")]);
        assert!(
            err.contains("points outside the function's folder"),
            "{err}"
        );
        // Even when the import is unused (the transform would drop it).
        let err = refusal(&[(
            "index.ts",
            "import { unused } from './nope';\nexport default 1;",
        )]);
        assert!(err.starts_with("index.ts:1:24: "), "{err}");
    }

    #[test]
    fn bad_paths_are_refused() {
        let long = format!("{}.ts", "a".repeat(MAX_PATH_BYTES));
        for (path, why) in [
            ("../x.ts", "'..'"),
            ("/abs.ts", "relative"),
            ("a//b.ts", "empty segment"),
            ("a/./b.ts", "'.'"),
            ("lib/", "empty segment"),
            ("x.py", ".js, .mjs, .ts or .mts"),
            ("x.tsx", ".js, .mjs, .ts or .mts"),
            (".ts", ".js, .mjs, .ts or .mts"),
            ("noext", ".js, .mjs, .ts or .mts"),
            ("lib\\x.ts", "'/'"),
            ("a\0b.ts", "control character"),
            ("a\nb.ts", "control character"),
            ("", "empty"),
            (long.as_str(), "256 bytes"),
        ] {
            let err = refusal(&[(path, "export default 1;")]);
            assert!(err.starts_with("invalid file path"), "{path:?}: {err}");
            assert!(err.contains(why), "{path:?}: {err}");
        }
        let err = refusal(&[("index.ts", "export default 1;"), ("index.ts", "")]);
        assert_eq!(err, "two files have the path \"index.ts\"");
        build(&[("deep/er/path-with.dots.d.ts", "export default 1;")]).expect("a fine path");
    }

    #[test]
    fn count_and_size_are_limited() {
        let err = compile(&[], None, LIMITS).expect_err("no files");
        assert_eq!(err.code(), ErrorCode::InvalidInput);

        let many: Vec<(String, &str)> = (0..=LIMITS.max_files)
            .map(|i| (format!("f{i}.js"), "export default 1;"))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let err = refusal(&many);
        assert_eq!(err, "too many files: 17, a deployment has at most 16");
        compile(&files(&many[..LIMITS.max_files]), Some("f0.js"), LIMITS)
            .expect("16 files are fine");

        let limits = CompileLimits {
            max_files: 4,
            max_source_bytes: 20,
        };
        let err = compile(
            &files(&[("index.js", "export default 1;"), ("a.js", "//x\n")]),
            None,
            limits,
        )
        .expect_err("too large");
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        assert_eq!(
            err.to_string(),
            "the source files total 21 bytes, over the limit of 20 bytes"
        );
        compile(&files(&[("index.js", "export default 1;")]), None, limits)
            .expect("17 bytes are fine");
    }

    #[test]
    fn the_entry_is_chosen_by_name_then_by_convention() {
        let ok = "export default 1;";
        let entry = |list: &[(&str, &str)], named: Option<&str>| {
            compile(&files(list), named, LIMITS).map(|bundle| bundle.entry)
        };
        let all = [
            ("a.ts", ok),
            ("index.mjs", ok),
            ("index.mts", ok),
            ("index.js", ok),
            ("index.ts", ok),
        ];
        assert_eq!(entry(&all, None).expect("entry"), "index.ts");
        assert_eq!(entry(&all[..4], None).expect("entry"), "index.js");
        assert_eq!(entry(&all[..3], None).expect("entry"), "index.mts");
        assert_eq!(entry(&all[..2], None).expect("entry"), "index.mjs");
        assert_eq!(entry(&all[..1], None).expect("entry"), "a.ts");
        assert_eq!(entry(&all, Some("a.ts")).expect("entry"), "a.ts");

        let err = entry(&all, Some("main.ts")).expect_err("not a file");
        assert_eq!(
            err.to_string(),
            "the entry \"main.ts\" is not one of the deployment's files"
        );
        let err = entry(&[("a.ts", ok), ("b.ts", ok)], None).expect_err("ambiguous");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.to_string().contains("name the entry"), "{err}");
        // Only the entry needs a default export.
        entry(
            &[("main.ts", ok), ("lib.ts", "export const x = 1;")],
            Some("main.ts"),
        )
        .expect("lib.ts has none and needs none");
    }

    #[test]
    fn jsx_is_refused() {
        let err = refusal(&[("index.js", "export default () =>\n  <div>hi</div>;")]);
        assert_eq!(err, "index.js:2:3: JSX is not supported");
        let err = refusal(&[(
            "index.ts",
            "const x: number = 1;\nexport default () => <>{x}</>;",
        )]);
        assert_eq!(err, "index.ts:2:22: JSX is not supported");
        // TypeScript's angle-bracket assertions are not JSX.
        build(&[("index.ts", "export default <number>(1 as unknown);")]).expect("compiles");
    }

    #[test]
    fn a_bundle_round_trips_through_bytes() {
        let bundle = build(&[
            (
                "index.ts",
                "import { x } from './lib/x.ts';\nexport default () => x;",
            ),
            ("lib/x.ts", "export const x: string = \"é\\u0000\";"),
        ])
        .expect("compiles");
        assert_eq!(bundle.entry, "index.ts");
        let paths: Vec<&str> = bundle.modules.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(paths, ["index.ts", "lib/x.ts"]);
        let bytes = bundle.to_bytes();
        assert!(bytes.starts_with(br#"{"format":1,"#));
        assert_eq!(Bundle::from_bytes(&bytes).expect("reads back"), bundle);
        assert!(bundle.module("lib/x").is_none());

        for corrupt in [
            &b"{nope"[..],
            br#"{"entry":"a","modules":[]}"#,
            br#"{"format":9,"entry":"a","modules":[]}"#,
        ] {
            let err = Bundle::from_bytes(corrupt).expect_err("corrupt");
            assert_eq!(err.code(), ErrorCode::Internal, "{err}");
        }
    }

    #[test]
    fn lines_and_columns_count_characters_from_one() {
        let code = "ab\ncé\r\nx";
        assert_eq!(line_column(code, 0), (1, 1));
        assert_eq!(line_column(code, 3), (2, 1));
        assert_eq!(line_column(code, 6), (2, 3)); // after "cé": é is 2 bytes
        assert_eq!(line_column(code, 5), (2, 2)); // inside é: its start
        assert_eq!(line_column(code, 99), (3, 2));
    }
}
