import Foundation
import Mustache

/// The config snippets of `templates/`, read at run time so an operator can edit them without a
/// rebuild. Looked up in `--templates`, then `CHPKI_TEMPLATES`, then `./templates`, then beside
/// the executable's checkout (`.build/<config>/chpki` -> `templates/`).
public struct Templates {
    public static let environmentVariable = "CHPKI_TEMPLATES"
    /// A file every templates directory has, to recognise one.
    static let marker = "opensearch-security.yml.mustache"

    public let directory: String

    public init(explicit: String?, environment: [String: String]) throws {
        var candidates: [String] = []
        if let explicit { candidates.append(explicit) }
        if let fromEnvironment = environment[Self.environmentVariable], !fromEnvironment.isEmpty { candidates.append(fromEnvironment) }
        candidates.append("templates")
        var directory = Path.parent(of: CommandLine.arguments.first.flatMap { Self.resolvedExecutable($0) } ?? ".")
        for _ in 0..<6 {
            candidates.append(Path.join(directory, "templates"))
            directory = Path.parent(of: directory)
        }
        if let explicit, !FileManager.default.fileExists(atPath: Path.join(explicit, Self.marker)) {
            throw ChpkiError.input(file: explicit, field: "--templates", "not a chpki templates directory (no \(Self.marker))")
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: Path.join($0, Self.marker)) }) else {
            throw ChpkiError.input(file: nil, field: "--templates",
                                   "cannot find chpki's templates/ directory; pass --templates DIR or set \(Self.environmentVariable)")
        }
        self.directory = found
    }

    private static func resolvedExecutable(_ argument: String) -> String? {
        guard argument.contains("/") else { return nil }
        return (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? argument
    }

    /// Renders `name.mustache` with `context`; a template that does not parse is an error naming it.
    public func render(_ name: String, _ context: [String: Any]) throws -> Data {
        Data(try parsed.template(name, in: directory).render(context).utf8)
    }

    private let parsed = ParsedTemplates()
}

/// Each template read and parsed once per run, on first use, not once per host: parsing costs
/// more than rendering, and a run renders every template of a service once per member.
private final class ParsedTemplates: @unchecked Sendable {  // `byName` only under `lock`
    private let lock = NSLock()
    private var byName: [String: MustacheTemplate] = [:]

    func template(_ name: String, in directory: String) throws -> MustacheTemplate {
        if let template = lock.withLock({ byName[name] }) { return template }
        let path = Path.join(directory, "\(name).mustache")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChpkiError.input(file: path, field: nil, "cannot read the template")
        }
        let template: MustacheTemplate
        do { template = try MustacheTemplate(string: String(decoding: data, as: UTF8.self)) } catch {
            throw ChpkiError.input(file: path, field: nil, "the template does not parse: \(error)")
        }
        lock.withLock { byName[name] = template }
        return template
    }
}
