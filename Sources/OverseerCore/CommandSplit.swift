/// Splits overseerd's command line into its own options and the program's
/// command: everything after a `--` among the options, or else from the first
/// word that is neither an option nor an option's value.
public enum CommandSplit {
    public static func split(_ arguments: [String], optionsTakingValue: Set<String>)
        -> (options: [String], command: [String]) {
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            // Only a `--` among overseerd's options separates; one after the program is the program's.
            if word == "--" {
                return (Array(arguments[..<index]), Array(arguments[(index + 1)...]))
            }
            guard word.hasPrefix("-"), word != "-" else { break }
            if !word.contains("="), optionsTakingValue.contains(word),
               index + 1 < arguments.count, arguments[index + 1] != "--" { index += 1 }
            index += 1
        }
        let split = min(index, arguments.count)
        return (Array(arguments[..<split]), Array(arguments[split...]))
    }
}
