import ChpkiBase

/// Path arithmetic on plain strings. (Foundation's NSString path methods crash on some inputs on
/// Linux, e.g. `deletingLastPathComponent` of a bare name.)
public enum Path {
    /// The directory part: "a/b" -> "a", "b" -> ".", "/b" -> "/".
    public static func parent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }

    /// The last component: "a/b" -> "b".
    public static func name(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    public static func join(_ directory: String, _ components: String...) -> String {
        components.reduce(directory) { result, component in
            result.hasSuffix("/") ? result + component : result + "/" + component
        }
    }
}
