import Foundation

/// The rubrics available by name: the shipped ones, overridden by a directory's files.
public struct RubricSet: Sendable {
    public private(set) var rubrics: [String: Rubric]

    /// The shipped rubrics: evil, hallucination, coherence, aligned.
    public static let builtin = RubricSet(rubrics: Dictionary(uniqueKeysWithValues: BuiltinRubrics.all.map { ($0.name, $0) }))

    /// The override files of a directory, by file name: every `NAME.rubric` (header format,
    /// named by its `name:` line) and `NAME.txt` (the whole file is the template, named by the
    /// file name). Two files for one name are refused; other files are ignored.
    public static func overrideFiles(in directory: URL) throws(JudgeError) -> [(file: String, rubric: Rubric)] {
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: directory.path) } catch {
            throw .invalidInput("cannot list rubric directory \(directory.path): \(error.localizedDescription)")
        }
        var out: [(file: String, rubric: Rubric)] = []
        for f in files.sorted() where f.hasSuffix(".rubric") || f.hasSuffix(".txt") {
            let url = directory.appendingPathComponent(f)
            let r = try Rubric.load(url, name: url.deletingPathExtension().lastPathComponent)
            if let other = out.first(where: { $0.rubric.name == r.name }) {
                throw .invalidInput("\(url.path) and \(other.file) both override the rubric `\(r.name)`; keep one")
            }
            out.append((url.path, r))
        }
        return out
    }

    /// The shipped rubrics with every `*.rubric` and `*.txt` file in `directory` added or
    /// replacing the shipped one of the same name. With `traits`, a file whose rubric is none of
    /// them is refused (it would otherwise be silently unused).
    public static func loading(overrides directory: URL, traits: [String]? = nil) throws(JudgeError) -> RubricSet {
        var set = builtin
        for (file, r) in try overrideFiles(in: directory) {
            if let traits, !traits.contains(r.name) {
                throw .invalidInput("\(file) overrides the rubric `\(r.name)`, which is no configured trait (traits: \(traits.joined(separator: ", "))); "
                                    + "rename or remove the file, or add the trait")
            }
            set.rubrics[r.name] = r
        }
        return set
    }

    public subscript(name: String) -> Rubric? { rubrics[name] }

    /// The rubric named `name`, or an error listing the known names.
    public func require(_ name: String) throws(JudgeError) -> Rubric {
        guard let r = rubrics[name] else {
            throw .invalidInput("unknown trait `\(name)`; known: \(rubrics.keys.sorted().joined(separator: ", "))")
        }
        return r
    }
}
