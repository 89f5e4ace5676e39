import Foundation

// Build-time tool of the EmbedTemplates plugin: `TemplateEmbedder OUTPUT.swift TEMPLATE...`
// writes one Swift file holding each template's exact text. The output depends only on the
// templates' names and bytes (sorted by name, no paths, no dates), so builds are reproducible.

/// A Swift string literal whose value is exactly `text`.
func literal(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            out += "\\u{\(String(scalar.value, radix: 16))}"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("TemplateEmbedder: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else { fail("usage: TemplateEmbedder OUTPUT.swift TEMPLATE...") }
let suffix = ".mustache"
var entries: [(name: String, text: String)] = []
for path in arguments.dropFirst() {
    let file = URL(fileURLWithPath: path).lastPathComponent
    guard file.hasSuffix(suffix) else { fail("\(path): not a .mustache file") }
    guard let data = FileManager.default.contents(atPath: path) else { fail("\(path): cannot read") }
    guard let text = String(data: data, encoding: .utf8) else { fail("\(path): not UTF-8") }
    entries.append((String(file.dropLast(suffix.count)), text))
}
entries.sort { $0.name < $1.name }

var source = """
    // Generated at build time by the EmbedTemplates plugin from templates/*.mustache. Do not edit:
    // edit the template and rebuild.

    enum BuiltInTemplates {
        /// Template name (file name without `.mustache`) and its exact text, sorted by name.
        static let all: [(name: String, text: String)] = [

    """
for entry in entries {
    source += "        (\(literal(entry.name)), \(literal(entry.text))),\n"
}
source += "    ]\n}\n"

do {
    // Rewritten only when it changes: SwiftPM relinks plugin tools when one build asks for another
    // product, which reruns this command; an untouched output keeps ChpkiCore from recompiling.
    if FileManager.default.contents(atPath: output) != Data(source.utf8) {
        try Data(source.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
} catch {
    fail("\(output): \(error)")
}
