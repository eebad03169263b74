# Sourced by bench/run.sh, bench/serve.sh and bench/soak.sh: the nginx they serve the files from.
# shellcheck shell=bash disable=SC2154 # $work, $server_ns, $server_ip, $port: the caller's
#
# start_nginx [NAMESPACE [TAG]]: nginx (one worker, sendfile) serving $work/www on
# $server_ip:$port inside NAMESPACE (default $server_ns), logs under $work; sets nginx_pid (the
# caller's cleanup kills it) and waits up to 5 s for the port, or calls the caller's `die`.
# TAG (default none) goes into the names of its configuration, PID, log and temporary files, so
# that a second nginx, in another namespace, can serve the same $work/www beside the first.
# shellcheck disable=SC2120 # both arguments are optional
start_nginx() {
    local ns=${1:-$server_ns} tag=${2:-}
    local conf=$work/nginx$tag.conf log=$work/nginx$tag-error.log out=$work/nginx$tag.out
    local temp=$work/nginx-temp
    mkdir -p "$temp"
    cat > "$conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx$tag.pid;
error_log $log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path $temp/body$tag;
    proxy_temp_path $temp/proxy$tag;
    fastcgi_temp_path $temp/fastcgi$tag;
    uwsgi_temp_path $temp/uwsgi$tag;
    scgi_temp_path $temp/scgi$tag;
    server {
        listen $server_ip:$port;
        root $work/www;
    }
}
EOF
    # `ip netns exec` execs nginx in place, so $! is the nginx master's PID.
    ip netns exec "$ns" nginx -e "$log" -p "$work" -c "$conf" >"$out" 2>&1 &
    nginx_pid=$!
    local ready=no
    for _ in $(seq 50); do
        if ip netns exec "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$server_ip/$port" 2>/dev/null; then
            ready=yes
            break
        fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $ready != yes ]]; then
        cat "$out" "$log" >&2 2>/dev/null || true
        die "nginx did not start within 5 s (in $ns)"
    fi
}
