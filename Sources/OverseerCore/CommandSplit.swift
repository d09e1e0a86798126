/// Splits overseerd's command line into its own options and the program's
/// command: everything after `--`, or, without `--`, from the first word that
/// is neither an option nor an option's value.
public enum CommandSplit {
    public static func split(_ arguments: [String], optionsTakingValue: Set<String>)
        -> (options: [String], command: [String]) {
        if let separator = arguments.firstIndex(of: "--") {
            return (Array(arguments[..<separator]), Array(arguments[(separator + 1)...]))
        }
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            guard word.hasPrefix("-"), word != "-" else { break }
            if !word.contains("="), optionsTakingValue.contains(word) { index += 1 }
            index += 1
        }
        let split = min(index, arguments.count)
        return (Array(arguments[..<split]), Array(arguments[split...]))
    }
}
