import Foundation

/// A JSON value printed exactly as JSONEncoder prints it with `[.prettyPrinted, .sortedKeys,
/// .withoutEscapingSlashes]` (objects' pairs are given already sorted): the nested parts of the
/// hand-written manifest (`BundleManifest.encoded`), whose bytes must not depend on an encoder.
indirect enum JSONText {
    case string(String)
    case int(Int)
    case bool(Bool)
    case array([JSONText])
    case object([(String, JSONText)])

    /// `indent`: the indentation of the line the value starts on.
    func write(indent: String, into out: inout String) {
        switch self {
        case let .string(text): out += BundleManifest.quoted(text)
        case let .int(value): out += String(value)
        case let .bool(value): out += value ? "true" : "false"
        case let .array(items): Self.array(items, indent: indent, into: &out)
        case let .object(pairs): Self.object(pairs, indent: indent, into: &out)
        }
    }

    static func array(_ items: [JSONText], indent: String, into out: inout String) {
        guard !items.isEmpty else { out += "[\n\n\(indent)]"; return }
        out += "[\n"
        for (index, item) in items.enumerated() {
            out += indent + "  "
            item.write(indent: indent + "  ", into: &out)
            out += index == items.count - 1 ? "\n" : ",\n"
        }
        out += indent + "]"
    }

    static func object(_ pairs: [(String, JSONText)], indent: String, into out: inout String) {
        guard !pairs.isEmpty else { out += "{\n\n\(indent)}"; return }
        out += "{\n"
        for (index, (key, value)) in pairs.enumerated() {
            out += indent + "  " + BundleManifest.quoted(key) + " : "
            value.write(indent: indent + "  ", into: &out)
            out += index == pairs.count - 1 ? "\n" : ",\n"
        }
        out += indent + "}"
    }
}
