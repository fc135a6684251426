//! The `wasi:blobstore` interfaces (`blobstore`, `container`, `types`)
//! implemented for `HostState`: what a guest calls, over the per-app and
//! per-instance state of `blob` (grants, containers, streams).

use super::*;

/// An error value for the guest.
type GuestResult<T> = wasmtime::Result<Result<T, String>>;

impl HostState {
    /// Charges one operation and the body bytes written since the last.
    fn blob_op(&mut self) {
        let bytes = self.caps.blob.uncharged.swap(0, Ordering::Relaxed);
        self.work
            .charge(BLOB_OP_FUEL.saturating_add(body_fuel(bytes)));
    }

    /// The granted container `name`, or the error value (and a warning)
    /// for one that is not granted.
    fn blob_container(&mut self, name: &str) -> Result<Arc<ContainerState>, String> {
        let access = &mut self.caps.blob;
        if let Some(granted) = &access.granted
            && let Some(state) = granted.containers.get(name)
        {
            return Ok(state.clone());
        }
        access.denials += 1;
        let (app, function) = access
            .granted
            .as_ref()
            .map_or(("?", "?"), |g| (g.app.as_str(), g.function.as_str()));
        if access.denials <= LOGGED_DENIALS {
            tracing::warn!(
                app,
                function,
                request_id = %self.request_id,
                container = %name.escape_debug(),
                "blob container not granted to the function"
            );
        } else if access.denials == LOGGED_DENIALS + 1 {
            tracing::warn!(
                app,
                function,
                request_id = %self.request_id,
                "further denied blob containers of this invocation are not logged"
            );
        }
        Err(format!(
            "container `{}` is not granted to this function",
            name.escape_debug()
        ))
    }

    /// Adds a resource, or an error value when the guest holds too many.
    fn blob_push<T: Send + 'static>(&mut self, value: T) -> Result<Resource<T>, String> {
        self.table
            .push(value)
            .map_err(|e| format!("cannot open another resource: {e}"))
    }
}

impl types::Host for HostState {}

impl types::HostOutgoingValue for HostState {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        self.blob_op();
        let (staging, max_object_size) = match &self.caps.blob.granted {
            Some(g) => (g.staging.clone(), g.max_object_size),
            None => (None, 0),
        };
        let status: Status = Arc::default();
        let bound_dir: SpoolDir = Arc::default();
        let (tx, task) = stream::spawn_spooler(staging, bound_dir.clone(), status.clone());
        let value = OutgoingValue {
            tx,
            task,
            status,
            bound_dir,
            target: None,
            stream_taken: false,
            max_object_size,
        };
        // A full table is a trap here: the function has no error value.
        Ok(self.table.push(value)?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        self_: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let uncharged = self.caps.blob.uncharged.clone();
        let held = stream::Held::new(&self.caps.blob.held);
        let value = self.table.get_mut(&self_)?;
        if value.stream_taken {
            return Ok(Err(()));
        }
        value.stream_taken = true;
        let writer = BodyWriter {
            tx: value.tx.clone(),
            status: value.status.clone(),
            written: 0,
            limit: value.max_object_size,
            uncharged,
            _held: held,
        };
        let stream: DynOutputStream = Box::new(writer);
        Ok(self.blob_push(stream).map_err(|_| ()))
    }

    async fn finish(&mut self, this: Resource<OutgoingValue>) -> GuestResult<()> {
        let value = self.table.delete(this)?;
        self.blob_op();
        let OutgoingValue {
            tx,
            task,
            status,
            target,
            ..
        } = value;
        let Some((state, name)) = target else {
            return Ok(Err("write-data was not called with this value".into()));
        };
        let _ = tx.send(Msg::End).await;
        drop(tx);
        let spool = match task.await {
            Ok(Ok(spool)) => spool,
            Ok(Err(e)) => return Ok(Err(e)),
            Err(_) => return Ok(Err("the write failed".into())),
        };
        if let Some(e) = status.lock().ok().and_then(|s| s.clone()) {
            return Ok(Err(e));
        }
        Ok(state.commit(spool, &name).await.map(|_| ()))
    }

    async fn drop(&mut self, rep: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        // The spooler sees its queue close and deletes the spool.
        self.table.delete(rep)?;
        Ok(())
    }
}

impl types::HostIncomingValue for HostState {
    async fn incoming_value_consume_sync(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> GuestResult<Vec<u8>> {
        let value = self.table.delete(this)?;
        self.blob_op();
        let limit = MAX_SYNC_READ.min(self.limiter.memory_limit as u64);
        if value.size > limit {
            return Ok(Err(format!(
                "the object is {} bytes, more than consume-sync reads ({limit}): use consume-async",
                value.size
            )));
        }
        Ok(match value.body {
            Body::Empty => Ok(Vec::new()),
            Body::File(file) => {
                let (rx, task) = stream::spawn_file_reader(file, value.size);
                BodyReader::new(rx, task).read_all(limit).await
            }
            Body::Stream(rx, task) => BodyReader::new(rx, task).read_all(limit).await,
        })
    }

    async fn incoming_value_consume_async(
        &mut self,
        this: Resource<IncomingValue>,
    ) -> GuestResult<Resource<DynInputStream>> {
        let value = self.table.delete(this)?;
        self.blob_op();
        let reader = match value.body {
            Body::Empty => {
                let (_, rx) = stream::chunk_queue();
                BodyReader::new(rx, AbortOnDrop(tokio::spawn(async {})))
            }
            Body::File(file) => {
                let (rx, task) = stream::spawn_file_reader(file, value.size);
                BodyReader::new(rx, task)
            }
            Body::Stream(rx, task) => BodyReader::new(rx, task),
        };
        let reader = reader.holding(&self.caps.blob.held);
        let stream: DynInputStream = Box::new(reader);
        Ok(self.blob_push(stream))
    }

    async fn size(&mut self, self_: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&self_)?.size)
    }

    async fn drop(&mut self, rep: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl container::Host for HostState {}

impl container::HostContainer for HostState {
    async fn name(&mut self, self_: Resource<Container>) -> GuestResult<String> {
        Ok(Ok(self.table.get(&self_)?.state.name.clone()))
    }

    async fn info(&mut self, self_: Resource<Container>) -> GuestResult<types::ContainerMetadata> {
        let state = &self.table.get(&self_)?.state;
        Ok(Ok(types::ContainerMetadata {
            name: state.name.clone(),
            created_at: state.created_at,
        }))
    }

    async fn get_data(
        &mut self,
        self_: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> GuestResult<Resource<IncomingValue>> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        if let Err(e) = names::check(&name) {
            return Ok(Err(e));
        }
        let value = match state.read(&name, start, end).await {
            Ok(value) => value,
            Err(e) => return Ok(Err(e)),
        };
        self.work.charge(body_fuel(value.size));
        Ok(self.blob_push(value))
    }

    async fn write_data(
        &mut self,
        self_: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> GuestResult<()> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        if let Err(e) = names::check(&name) {
            return Ok(Err(e));
        }
        let value = self.table.get_mut(&data)?;
        if value.target.is_some() {
            return Ok(Err("write-data was already called with this value".into()));
        }
        if let Some(dir) = state.spool_dir()
            && let Ok(mut bound) = value.bound_dir.lock()
        {
            *bound = Some(dir);
        }
        value.target = Some((state, name));
        Ok(Ok(()))
    }

    async fn list_objects(
        &mut self,
        self_: Resource<Container>,
    ) -> GuestResult<Resource<ObjectNames>> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        let source = match state.names() {
            Ok(source) => source,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.blob_push(ObjectNames {
            source: Some(source),
            done: false,
        }))
    }

    async fn delete_object(&mut self, self_: Resource<Container>, name: String) -> GuestResult<()> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        if let Err(e) = names::check(&name) {
            return Ok(Err(e));
        }
        Ok(state.delete(&name).await)
    }

    async fn delete_objects(
        &mut self,
        self_: Resource<Container>,
        names: Vec<String>,
    ) -> GuestResult<()> {
        let state = self.table.get(&self_)?.state.clone();
        for name in names {
            self.blob_op();
            if let Err(e) = names::check(&name) {
                return Ok(Err(e));
            }
            if let Err(e) = state.delete(&name).await {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    async fn has_object(&mut self, self_: Resource<Container>, name: String) -> GuestResult<bool> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        if let Err(e) = names::check(&name) {
            return Ok(Err(e));
        }
        Ok(state.stat(&name).await.map(|s| s.is_some()))
    }

    async fn object_info(
        &mut self,
        self_: Resource<Container>,
        name: String,
    ) -> GuestResult<types::ObjectMetadata> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        if let Err(e) = names::check(&name) {
            return Ok(Err(e));
        }
        Ok(match state.stat(&name).await {
            Ok(Some((size, created_at))) => Ok(types::ObjectMetadata {
                name,
                container: state.name.clone(),
                created_at,
                size,
            }),
            Ok(None) => Err("no such object".into()),
            Err(e) => Err(e),
        })
    }

    async fn clear(&mut self, self_: Resource<Container>) -> GuestResult<()> {
        self.blob_op();
        let state = self.table.get(&self_)?.state.clone();
        Ok(state.clear().await)
    }

    async fn drop(&mut self, rep: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for HostState {
    async fn read_stream_object_names(
        &mut self,
        self_: Resource<ObjectNames>,
        len: u64,
    ) -> GuestResult<(Vec<String>, bool)> {
        self.blob_op();
        let (names, _, done) = match self.blob_names(&self_, len, false).await? {
            Ok(batch) => batch,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok((names, done)))
    }

    async fn skip_stream_object_names(
        &mut self,
        self_: Resource<ObjectNames>,
        num: u64,
    ) -> GuestResult<(u64, bool)> {
        self.blob_op();
        let (_, count, done) = match self.blob_names(&self_, num, true).await? {
            Ok(batch) => batch,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok((count as u64, done)))
    }

    async fn drop(&mut self, rep: Resource<ObjectNames>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostState {
    /// The next batch of a listing: names (unless `skip`), how many, and
    /// whether the listing is over.
    async fn blob_names(
        &mut self,
        names: &Resource<ObjectNames>,
        len: u64,
        skip: bool,
    ) -> GuestResult<(Vec<String>, usize, bool)> {
        let listing = self.table.get_mut(names)?;
        if listing.done || len == 0 {
            return Ok(Ok((Vec::new(), 0, listing.done)));
        }
        let Some(source) = listing.source.take() else {
            return Ok(Err("the listing failed".into()));
        };
        let max = if skip {
            len
        } else {
            len.min(MAX_NAMES_PER_READ)
        };
        let (source, result) = source
            .next_batch(usize::try_from(max).unwrap_or(usize::MAX), skip)
            .await;
        let listing = self.table.get_mut(names)?;
        listing.source = Some(source);
        if let Ok((_, _, done)) = &result {
            listing.done = *done;
        }
        Ok(result)
    }

    /// Copies (and, if `remove`, then deletes) an object between granted
    /// containers.
    async fn blob_copy(
        &mut self,
        src: types::ObjectId,
        dest: types::ObjectId,
        remove: bool,
    ) -> Result<(), String> {
        self.blob_op();
        let from = self.blob_container(&src.container)?;
        let to = self.blob_container(&dest.container)?;
        names::check(&src.object)?;
        names::check(&dest.object)?;
        let staging = self
            .caps
            .blob
            .granted
            .as_ref()
            .and_then(|g| g.staging.clone())
            .ok_or("no container is granted")?;
        #[cfg(feature = "s3")]
        if let (Backend::S3(a), Backend::S3(b)) = (&from.backend, &to.backend)
            && a.same_bucket(b)
        {
            a.copy_within(&src.object, b, &dest.object).await?;
            if remove {
                from.delete(&src.object).await?;
            }
            return Ok(());
        }
        let into = to.spool_dir().unwrap_or(staging);
        let spool = from.spool_copy(&src.object, into).await?;
        let size = to.commit(Some(spool), &dest.object).await?;
        self.work.charge(body_fuel(size));
        if remove && !(Arc::ptr_eq(&from, &to) && src.object == dest.object) {
            from.delete(&src.object).await?;
        }
        Ok(())
    }
}

impl blobstore::Host for HostState {
    async fn create_container(&mut self, name: String) -> GuestResult<Resource<Container>> {
        self.get_container(name).await
    }

    async fn get_container(&mut self, name: String) -> GuestResult<Resource<Container>> {
        self.blob_op();
        let state = match self.blob_container(&name) {
            Ok(state) => state,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.blob_push(Container { state }))
    }

    async fn delete_container(&mut self, name: String) -> GuestResult<()> {
        self.blob_op();
        let state = match self.blob_container(&name) {
            Ok(state) => state,
            Err(e) => return Ok(Err(e)),
        };
        Ok(state.clear().await)
    }

    async fn container_exists(&mut self, name: String) -> GuestResult<bool> {
        self.blob_op();
        let access = &self.caps.blob;
        Ok(Ok(access
            .granted
            .as_ref()
            .is_some_and(|g| g.containers.contains_key(&name))))
    }

    async fn copy_object(
        &mut self,
        src: types::ObjectId,
        dest: types::ObjectId,
    ) -> GuestResult<()> {
        Ok(self.blob_copy(src, dest, false).await)
    }

    async fn move_object(
        &mut self,
        src: types::ObjectId,
        dest: types::ObjectId,
    ) -> GuestResult<()> {
        Ok(self.blob_copy(src, dest, true).await)
    }
}
