/**
 * The curl exit codes the mesh model answers with, named as libcurl names them (CURLE_*). The list and
 * their meanings: https://curl.se/libcurl/c/libcurl-errors.html (also `man libcurl-errors`).
 */

/** CURLE_OK: the transfer completed (an HTTP response arrived, whatever its status). */
export const CURL_OK = 0;

/** CURLE_COULDNT_RESOLVE_HOST: the host name did not resolve. */
export const CURL_COULDNT_RESOLVE_HOST = 6;

/** CURLE_COULDNT_CONNECT: nothing accepted the TCP connection. */
export const CURL_COULDNT_CONNECT = 7;

/** CURLE_OPERATION_TIMEDOUT: no answer within curl's time limit. */
export const CURL_OPERATION_TIMEDOUT = 28;

/**
 * CURLE_SSL_CONNECT_ERROR: the TLS handshake failed. A proxy of the mesh that closes the connection
 * (no filter chain, no cluster, a rejected listener, a failed tunnel) does so before curl's handshake
 * completes.
 */
export const CURL_SSL_CONNECT_ERROR = 35;

/** CURLE_PEER_FAILED_VERIFICATION: the server's certificate does not name the host (without `--insecure`). */
export const CURL_PEER_FAILED_VERIFICATION = 60;
