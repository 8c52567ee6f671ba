//! `GET /static/{file}`: the stylesheet and scripts, served from the binary.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::pages::{ADMIN_SCRIPT, DESKTOP_SCRIPT, SCRIPT, STYLESHEET};

/// How long browsers may cache the assets, in seconds.
const ASSET_MAX_AGE_SECS: u32 = 3600;

pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match file.as_str() {
        "lablink.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "lablink.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "admin.js" => (ADMIN_SCRIPT, "text/javascript; charset=utf-8"),
        "desktop.js" => (DESKTOP_SCRIPT, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={ASSET_MAX_AGE_SECS}"),
        ))
        .body(body)
}
