/// What `overseerd-fetch --help` prints.
let helpText = """
    overseerd-fetch: download one new program binary for overseerd, or say it has not changed.

    usage: overseerd-fetch [options] URL

    URL is one of
      http://HOST/PATH, https://HOST/PATH
                        a conditional GET; redirects are followed; a body sent with
                        Content-Encoding is decoded, and a PATH ending in .gz is inflated
      s3://BUCKET/KEY   a GET signed with AWS Signature V4 from AWS_ACCESS_KEY_ID,
                        AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (anonymous when unset)
      github:OWNER/REPO the latest release of OWNER/REPO and its asset for this machine;
                        GITHUB_TOKEN, when set, is sent to the API as a bearer token

    options
      --output-fd N             write the body to this open file descriptor, from offset 0 (default 3)
      --etag VALUE              send If-None-Match: VALUE (for github: on the release JSON)
      --last-modified VALUE     send If-Modified-Since: VALUE
      --max-size BYTES          fail (kind "size") once more than BYTES, after decompression,
                                would be written (default 1073741824)
      --connect-timeout SECONDS give up connecting after this long (default 10)
      --low-speed-time SECONDS  fail (kind "timeout") when under 1 byte/s for this long (default 30)
      --max-time SECONDS        bound on each whole transfer (default 3600)
      --max-redirects N         redirects to follow; more is an error of kind "http" (default 5)
      --sidecar SUFFIX          also fetch URL+SUFFIX (appended to the path; for github the asset
                                named ASSET+SUFFIX), at most 64 KiB, and report its text as the field
                                "sidecar:SUFFIX"; repeatable; a missing one is an error of kind "sidecar"
      --s3-endpoint URL         path-style S3 endpoint, e.g. http://127.0.0.1:9000
                                (default https://BUCKET.s3.REGION.amazonaws.com)
      --s3-region REGION        default $AWS_REGION, then $AWS_DEFAULT_REGION, then us-east-1
      --github-api-url URL      default https://api.github.com
      --asset-pattern GLOB      the release asset to take (fnmatch(3), case-sensitive); default: the one
                                asset whose name contains "linux" and this machine's architecture
                                (x86_64 or amd64 / aarch64 or arm64), ignoring case
      -h, --help                print this text

    Proxies: libcurl honours http_proxy, https_proxy, all_proxy and no_proxy.

    output: exactly one line of JSON on stdout, then the exit status
      0  {"result":"downloaded","bytes":N,"sha256":"…","etag":"…","last_modified":"…","url":"…",…}
         the body is in the output file; sha256 is of the bytes written; url is the final URL
      0  {"result":"not-modified",…}   HTTP 304; nothing was written
      1  {"result":"error","kind":"…","status":N,"message":"…"}
         kind is http, size, timeout, network, tls, io, format or sidecar; status is the HTTP
         status when there was one. A response with status 400 or more writes nothing to the
         output file; other errors may leave a partial body there: discard it. A "size" error
         of a 2xx response carries its "etag"/"last_modified": send them back with the next
         poll so that the same oversized body is not downloaded again.
      64 {"result":"error","kind":"usage",…}   bad arguments

    overseerd-fetch is started by overseerd for each poll; it holds no state of its own.
    """
