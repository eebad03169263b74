# Sourced by bench/run.sh and bench/soak.sh: the nginx both of them serve the file from.
#
# start_nginx: nginx (one worker, sendfile) serving $work/www on $server_ip:$port inside the
# namespace $server_ns, logs under $work; sets nginx_pid (the caller's cleanup kills it) and
# waits up to 5 s for the port, or calls the caller's `die`.
start_nginx() {
    cat > "$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx-temp/body;
    proxy_temp_path $work/nginx-temp/proxy;
    fastcgi_temp_path $work/nginx-temp/fastcgi;
    uwsgi_temp_path $work/nginx-temp/uwsgi;
    scgi_temp_path $work/nginx-temp/scgi;
    server {
        listen $server_ip:$port;
        root $work/www;
    }
}
EOF
    # `ip netns exec` execs nginx in place, so $! is the nginx master's PID.
    ip netns exec "$server_ns" nginx -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf" \
        >"$work/nginx.out" 2>&1 &
    nginx_pid=$!
    local ready=no
    for _ in $(seq 50); do
        if ip netns exec "$server_ns" timeout 1 bash -c "exec 3<>/dev/tcp/$server_ip/$port" 2>/dev/null; then
            ready=yes
            break
        fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $ready != yes ]]; then
        cat "$work/nginx.out" "$work/nginx-error.log" >&2 2>/dev/null || true
        die "nginx did not start within 5 s"
    fi
}
