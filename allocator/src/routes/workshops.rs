//! The admin JSON API for workshops and notifications: each handler takes an
//! [`AdminCaller`], calls one admin action ([`crate::admin_actions::workshops`]) and answers
//! its typed result as JSON.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use lablink_schema::outbox::{Delivery, OutboxEvent};
use lablink_schema::wire::{ExtendWorkshop, WorkshopChange, WorkshopRequest};
use serde::{Deserialize, Serialize};

use crate::admin_actions::workshops;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::paging::{self, PageQuery};
use crate::state::AppState;

/// `POST /api/admin/workshops`: 201 with the workshop (and a generated invite code, once).
/// With `Idempotency-Key`, a retry answers the first answer (without the invite code).
#[utoipa::path(
    post,
    path = "/api/admin/workshops",
    tag = "admin: workshops",
    request_body = WorkshopRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry answer the first answer")
    ),
    responses(
        (status = 201, description = "Created; `Location` is the workshop", body = lablink_schema::wire::WorkshopCreated),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody),
        (status = 422, description = "An idempotency key reused for another request", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminCaller(caller): AdminCaller,
    body: web::Json<WorkshopRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    idempotency::once(&state, &request, &caller, &body, || async {
        let created = workshops::create(&state, &caller, body.clone()).await?;
        let location = format!("/api/admin/workshops/{}", created.workshop.id);
        let mut answer = Created::at(location, &created)?;
        if created.invite_code.is_some() {
            answer.without_secret = Some(idempotency::to_json(&created.workshop)?);
        }
        Ok(answer)
    })
    .await
}

/// `GET /api/admin/workshops`: every workshop, the latest start first.
#[utoipa::path(
    get,
    path = "/api/admin/workshops",
    tag = "admin: workshops",
    params(PageQuery),
    responses(
        (status = 200, description = "Every workshop, the latest start first", body = Vec<lablink_schema::wire::WorkshopView>),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn list(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let listed = paging::page(workshops::list(&state).await?, |w| w.id.to_string(), &page)?;
    Ok(listed.respond("/api/admin/workshops", &listed.items))
}

/// `GET /api/admin/workshops/{id}`: its state, plan (planned and done actions), VMs and
/// spend.
#[utoipa::path(
    get,
    path = "/api/admin/workshops/{id}",
    tag = "admin: workshops",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "One workshop", body = lablink_schema::wire::WorkshopView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn show(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::show(&state, *id).await?))
}

/// `GET /api/admin/workshops/{id}/participants`: the instructor's view: the funnel now and
/// each participant's step, the stuck first.
#[utoipa::path(
    get,
    path = "/api/admin/workshops/{id}/participants",
    tag = "admin: workshops",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "The instructor's view", body = lablink_schema::wire::ParticipantsView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn participants(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(
            crate::admin_actions::participants::of_workshop(&state, *id)
                .await?
                .1,
        ))
}

/// `PATCH /api/admin/workshops/{id}`: changes its name, time zone label, headcount, spare
/// VMs or roster.
#[utoipa::path(
    patch,
    path = "/api/admin/workshops/{id}",
    tag = "admin: workshops",
    request_body = WorkshopChange,
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Changed", body = lablink_schema::wire::WorkshopView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn edit(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
    body: web::Json<WorkshopChange>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::edit(&state, &caller, *id, body.into_inner()).await?))
}

/// `POST /api/admin/workshops/{id}/end`: ends it now.
#[utoipa::path(
    post,
    path = "/api/admin/workshops/{id}/end",
    tag = "admin: workshops",
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Ending now", body = lablink_schema::wire::WorkshopView),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn end(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::end_now(&state, &caller, *id).await?))
}

/// `POST /api/admin/workshops/{id}/extend` with `{"ends_at"}`.
#[utoipa::path(
    post,
    path = "/api/admin/workshops/{id}/extend",
    tag = "admin: workshops",
    request_body = ExtendWorkshop,
    params(
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "Its end moved", body = lablink_schema::wire::WorkshopView),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 409, description = "Conflicts with the current state", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn extend(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
    body: web::Json<ExtendWorkshop>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::extend(&state, &caller, *id, body.into_inner()).await?))
}

/// One notification with where each of its deliveries stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub event: String,
    pub subject: String,
    pub created_at: chrono::NaiveDateTime,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub channel: String,
    pub delivery_key: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delivered_at: Option<chrono::NaiveDateTime>,
}

/// The newest notifications (of one workshop when `workshop` is set), with their deliveries.
pub async fn read_notifications(
    state: &AppState,
    workshop: Option<i64>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<NotificationView>, ApiError> {
    state
        .read(move |conn| {
            OutboxEvent::list_recent(conn, workshop, before, limit)?
                .into_iter()
                .map(|event| {
                    let deliveries = Delivery::of_event(conn, event.id)?
                        .into_iter()
                        .map(|d| DeliveryView {
                            channel: d.channel,
                            delivery_key: d.delivery_key,
                            state: d.state,
                            attempts: d.attempts,
                            last_error: d.last_error,
                            delivered_at: d.delivered_at,
                        })
                        .collect();
                    Ok(NotificationView {
                        id: event.id,
                        event: event.kind,
                        subject: event.subject,
                        created_at: event.created_at,
                        deliveries,
                    })
                })
                .collect()
        })
        .await
}

/// `GET /api/admin/workshops/{id}/notifications`: what was sent about it, and to whom.
#[utoipa::path(
    get,
    path = "/api/admin/workshops/{id}/notifications",
    tag = "admin: notifications",
    params(
        NotificationPage,
        ("id" = i64, Path, description = "Its id")
    ),
    responses(
        (status = 200, description = "What was sent about the workshop, newest first", body = Vec<NotificationView>),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn notifications(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
    page: web::Query<NotificationPage>,
) -> Result<HttpResponse, ApiError> {
    workshops::show(&state, *id).await?;
    notification_page(
        &state,
        Some(*id),
        &page,
        &format!("/api/admin/workshops/{id}/notifications"),
    )
    .await
}

/// `GET /api/admin/notifications`: the newest notifications with their deliveries.
#[utoipa::path(
    get,
    path = "/api/admin/notifications",
    tag = "admin: notifications",
    params(NotificationPage),
    responses(
        (status = 200, description = "Every notification, newest first", body = Vec<NotificationView>),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn all_notifications(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    page: web::Query<NotificationPage>,
) -> Result<HttpResponse, ApiError> {
    notification_page(&state, None, &page, "/api/admin/notifications").await
}

/// Query of the notification lists.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NotificationPage {
    /// Notifications older than this id (the cursor of the `Link: rel="next"` header).
    pub before: Option<i64>,
    /// 1 to 1,000; 200 when absent.
    pub limit: Option<usize>,
}

/// One page of notifications, newest first, with the next page's `Link`.
async fn notification_page(
    state: &AppState,
    workshop: Option<i64>,
    page: &NotificationPage,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let limit = paging::checked_limit(page.limit, 200)?;
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let listed = read_notifications(state, workshop, page.before, fetch).await?;
    Ok(paging::respond_before(path, listed, limit, |n| n.id))
}

/// `POST /api/admin/notifications/test`: sends a test through every channel now and says
/// what each answered.
#[utoipa::path(
    post,
    path = "/api/admin/notifications/test",
    tag = "admin: notifications",
    responses(
        (status = 200, description = "What each channel said", body = Vec<workshops::TestSend>),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 403, description = "A read-only token on a change, or a cross-site request", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn test_send(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::test_send(&state, &caller).await?))
}
