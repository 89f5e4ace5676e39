import Foundation

/// `chpki templates list|show`: which config snippet templates bundles render and where each comes
/// from (built in, or an override file), and the text of one, to start an override from.
public enum TemplatesCommand {
    struct Listing: Encodable {
        struct Item: Encodable {
            var name: String
            /// "built-in" or "override".
            var source: String
            @NullEncoded var path: String?
            /// False for an override file no built-in template has the name of: bundles never render it.
            var used: Bool
        }

        @NullEncoded var overrideDirectory: String?
        var templates: [Item]

        enum CodingKeys: String, CodingKey {
            case overrideDirectory = "override_directory", templates
        }
    }

    struct Shown: Encodable {
        var name: String
        var source: String
        @NullEncoded var path: String?
        var text: String
    }

    public static func list(templatesDirectory: String?, settings: Settings, reporter: Reporter) throws {
        let templates = try Templates(explicit: templatesDirectory, environment: settings.environment)
        let items = templates.all.map { entry -> Listing.Item in
            switch entry.source {
            case .builtIn: return .init(name: entry.name, source: "built-in", path: nil, used: true)
            case .override(let path): return .init(name: entry.name, source: "override", path: path, used: entry.hasBuiltIn)
            }
        }
        try reporter.emit(Listing(overrideDirectory: templates.overrideDirectory, templates: items))
        let rows = items.map { item -> [String] in
            let source = item.path.map { item.used ? "override \($0)" : "\($0) (unused: no built-in template of this name)" } ?? "built-in"
            return [item.name, source]
        }
        reporter.table(header: ["NAME", "SOURCE"], rows: rows)
        if let directory = templates.overrideDirectory {
            reporter.line("override directory: \(directory) (a NAME.mustache there replaces the built-in NAME)")
        } else {
            reporter.line("no override directory (--templates DIR, \(Templates.environmentVariable) or \(Templates.systemDirectory)): all built in")
        }
    }

    /// Prints the template bundles would render for `name` (the override when there is one;
    /// `builtIn` forces the built-in text), exactly, so it can be saved as an override's start.
    public static func show(_ name: String, builtIn: Bool, templatesDirectory: String?, settings: Settings, reporter: Reporter) throws {
        let templates = try Templates(explicit: builtIn ? nil : templatesDirectory,
                                      environment: builtIn ? [:] : settings.environment,
                                      systemDirectory: builtIn ? "" : Templates.systemDirectory)
        let entry = try templates.entry(named: name)
        let path: String?
        if case .override(let overridePath) = entry.source { path = overridePath } else { path = nil }
        try reporter.emit(Shown(name: entry.name, source: path == nil ? "built-in" : "override", path: path, text: entry.text))
        reporter.block(entry.text)
    }
}
