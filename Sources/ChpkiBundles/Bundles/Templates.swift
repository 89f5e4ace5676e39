import ChpkiBase
import ChpkiPlatform
import Foundation
import Mustache

/// The config snippets bundles render (SPEC §4). Every `templates/*.mustache` of the source tree
/// is compiled into the binary (the EmbedTemplates plugin generates `BuiltInTemplates`), so an
/// installed chpki works from any directory. An operator changes a snippet without a rebuild by
/// putting a file of the same name into the override directory: the first of `--templates DIR`,
/// `CHPKI_TEMPLATES`, `/etc/chpki/templates` (the last only when it exists). A template found
/// there replaces the built-in one of that name; the others stay built-in. Overrides render into
/// every host's config, so the directory and each override must be owned by root or the user
/// chpki runs as and not group/other-writable (SPEC §8, `TrustedDirectory`); anything else is
/// refused before a template is read.
public struct Templates: Sendable {
    public static let environmentVariable = "CHPKI_TEMPLATES"
    public static let systemDirectory = "/etc/chpki/templates"
    public static let fileSuffix = ".mustache"

    public enum Source: Sendable, Equatable {
        case builtIn
        /// The file in the override directory that replaces (or, with no built-in of its name, adds) the template.
        case override(path: String)
    }

    public struct Entry: Sendable {
        public var name: String
        public var source: Source
        public var text: String
        /// False for an override file whose name no built-in template has: chpki never renders it.
        public var hasBuiltIn: Bool
        let parsed: MustacheTemplate
    }

    /// The override directory in use, or nil when every template is the built-in one.
    public let overrideDirectory: String?
    private let entries: [String: Entry]

    /// The built-in templates' names, sorted.
    public static var builtInNames: [String] { BuiltInTemplates.all.map(\.name) }

    /// Reads the override directory (when one applies) and parses every template once; a
    /// template that does not parse is refused here, naming its file, before anything is written.
    public init(explicit: String?, environment: [String: String], systemDirectory: String = Templates.systemDirectory) throws {
        let fromEnvironment = environment[Self.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        var directory: String?
        var field: String?
        if let named = explicit ?? fromEnvironment {
            field = explicit != nil ? "--templates" : Self.environmentVariable
            guard Self.isDirectory(named) else { throw ChpkiError.input(.fileMissing, file: named, field: field, "no such directory") }
            directory = named
        } else if Self.isDirectory(systemDirectory) {
            directory = systemDirectory
        }
        var entries: [String: Entry] = [:]
        for builtIn in BuiltInTemplates.all {
            entries[builtIn.name] = Entry(name: builtIn.name, source: .builtIn, text: builtIn.text, hasBuiltIn: true,
                                          parsed: try Self.parse(builtIn.text, source: "built-in template \(builtIn.name)"))
        }
        if let directory {
            for file in try Self.overrideFiles(in: directory, field: field) {
                let name = String(file.name.dropLast(Self.fileSuffix.count))
                guard let text = String(data: file.data, encoding: .utf8) else {
                    throw ChpkiError.input(.templateInvalid, file: file.path, field: nil, "the template is not UTF-8 text")
                }
                entries[name] = Entry(name: name, source: .override(path: file.path), text: text, hasBuiltIn: entries[name] != nil,
                                      parsed: try Self.parse(text, source: file.path))
            }
        }
        self.overrideDirectory = directory
        self.entries = entries
    }

    /// Every template, built-in and override, sorted by name.
    public var all: [Entry] { entries.values.sorted { $0.name < $1.name } }

    /// The template chpki renders for `name`; an unknown name is refused, listing the known ones.
    public func entry(named name: String) throws -> Entry {
        let bare = name.hasSuffix(Self.fileSuffix) ? String(name.dropLast(Self.fileSuffix.count)) : name
        guard let entry = entries[bare] else {
            throw ChpkiError.input(.templateUnknown, file: nil, field: "NAME",
                                   "no template '\(name)' (known: \(Self.builtInNames.joined(separator: ", ")))")
        }
        return entry
    }

    /// The built-in text of `name`, whatever the override directory holds.
    public static func builtInText(_ name: String) -> String? {
        BuiltInTemplates.all.first { $0.name == name }?.text
    }

    /// Renders the template `name` (without `.mustache`) with `context`.
    public func render(_ name: String, _ context: [String: Any]) throws -> Data {
        guard let entry = entries[name] else {
            throw ChpkiError(.internalBug, "chpki has no template '\(name)' (a build without templates/\(name)\(Self.fileSuffix)?)")
        }
        return Data(entry.parsed.render(context).utf8)
    }

    private static func parse(_ text: String, source: String) throws -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: text)
        } catch {
            throw ChpkiError.input(.templateInvalid, file: source, field: nil, "the template does not parse: \(error)")
        }
    }

    /// `NAME.mustache` files of the directory (regular files only, subdirectories skipped), read
    /// only when the directory and each file are trusted (`TrustedDirectory`).
    private static func overrideFiles(in directory: String, field: String?) throws -> [TrustedDirectory.File] {
        do {
            return try TrustedDirectory.read(directory, include: { $0.hasSuffix(fileSuffix) && $0.count > fileSuffix.count },
                                             limit: ReadLimits.template)
        } catch let refusal as TrustedDirectory.Refusal {
            let why = refusal.untrusted ? " (another user could change what chpki renders into every host's config)" : ""
            throw ChpkiError.input(refusal.code, file: refusal.path, field: field, "template override refused: \(refusal.reason)\(why)")
        }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
