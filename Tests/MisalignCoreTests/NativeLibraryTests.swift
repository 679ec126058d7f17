import Testing
import Foundation
import CCurl
import CMisalignKernels
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// The system-library targets link and their typed wrappers work.
@Suite struct NativeLibraryTests {
    @Test func curlWrappersSetAndReadOptions() throws {
        #expect(curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK)
        let version = String(cString: curl_version())
        #expect(version.hasPrefix("libcurl/"))
        let h = try #require(curl_easy_init())
        defer { curl_easy_cleanup(h) }
        #expect(misalign_curl_setopt_string(h, CURLOPT_URL, "http://127.0.0.1:9/") == CURLE_OK)
        #expect(misalign_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, 200) == CURLE_OK)
        #expect(misalign_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1) == CURLE_OK)
        var list: UnsafeMutablePointer<curl_slist>? = nil
        list = curl_slist_append(list, "Accept: application/json")
        defer { curl_slist_free_all(list) }
        #expect(misalign_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list) == CURLE_OK)
        // Port 9 (discard) is closed on loopback: the transfer fails fast and getinfo still answers.
        let rc = curl_easy_perform(h)
        #expect(rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT)
        var code: Int = -1
        #expect(misalign_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
        #expect(code == 0)
        var url: UnsafeMutablePointer<CChar>? = nil
        #expect(misalign_curl_getinfo_string(h, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK)
        #expect(url.map { String(cString: $0) } == "http://127.0.0.1:9/")
    }

    @Test func kernelDispatchReportsAnISA() {
        #expect(!KernelInfo.isa.isEmpty)
    }

    /// The benchmarks' FMA-peak probe: a plausible rate where the CPU has vector FMAs (every
    /// x86-64-v3 or v4 machine), 0 for no threads. The value itself is the benchmarks' business:
    /// under a parallel test run the cores are shared.
    @Test func fmaPeakProbeGivesAPlausibleRate() {
        #expect(misalign_fma_peak_gflops(0, 0.01) == 0)
        guard KernelInfo.isa.contains("v3") || KernelInfo.isa.contains("v4") else { return }
        let rate = misalign_fma_peak_gflops(1, 0.02)
        #expect(rate > 1 && rate < 10_000, "\(rate) GFLOP/s")
    }
}
