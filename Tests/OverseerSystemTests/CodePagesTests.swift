import OverseerSystem
import Testing

/// Which mappings `CodePages.release()` may drop: executable, private, file-backed code only.
@Suite struct CodePagesTests {
    @Test func onlyPrivateExecutableFileMappingsAreCode() {
        let maps = """
            55d7816c6000-55d78244c000 r-xp 00a3b000 08:01 1234567 /usr/bin/overseerd
            55d78244c000-55d7824a4000 r--p 014c1000 08:01 1234567 /usr/bin/overseerd
            55d7824a4000-55d7826a6000 rw-p 01519000 08:01 1234567 /usr/bin/overseerd
            7f0000000000-7f0000100000 r-xs 00000000 08:01 42 /dev/shm/shared code
            7f1000000000-7f1000200000 r-xp 00028000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
            7f2000000000-7f2000001000 r-xp 00000000 00:00 0 
            7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
            ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
            garbage line
            """
        #expect(CodePages.codeMappings(in: maps) == [
            CodePages.Mapping(start: 0x55d7816c6000, end: 0x55d78244c000),
            CodePages.Mapping(start: 0x7f1000000000, end: 0x7f1000200000),
        ])
    }

    @Test func releasingThisProcessesCodeLeavesItRunning() {
        // The test runner's own code is dropped from its page tables and faulted back as it goes on.
        #expect(CodePages.release() > 0)
        #expect(CodePages.codeMappings(in: "").isEmpty)
    }
}
