import Foundation
import PackagePlugin

/// Compiles the package's `templates/*.mustache` into the target as Swift string literals, so the
/// installed binary carries its templates and needs no files beside it (`Bundle.module` would:
/// on Linux it looks for a resource directory next to the executable).
///
/// The list of templates is read each time SwiftPM plans a build, so a template added to
/// `templates/` is embedded by the next `swift build` without any change here.
@main
struct EmbedTemplates: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let directory = context.package.directoryURL.appending(path: "templates")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path(percentEncoded: false))
            .filter { $0.hasSuffix(".mustache") }
            .sorted()
        let inputs = names.map { directory.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltInTemplates.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) templates from templates/",
                executable: try context.tool(named: "TemplateEmbedder").url,
                arguments: [output.path(percentEncoded: false)] + inputs.map { $0.path(percentEncoded: false) },
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
